"""Notification status: one partition per notification, a summary row plus one row per target.

Each delivery writes only its own targets' rows (in entity-group transactions of up to 100),
so many deliveries can record outcomes at once without a hot entity; a status read is one
single-partition query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError
from azure.data.tables.aio import TableClient

SUMMARY = "summary"
TARGET_PREFIX = "t:"
PAGE_PREFIX = "p:"
MAX_BATCH = 100
FINAL_STATES = ("delivered", "failed")


@dataclass
class TargetOutcome:
    """Where one notification stands for one installation."""

    installation_id: str
    status: str  # delivered | failed | retrying
    attempts: int
    updated_at: datetime
    reason: str | None = None
    status_code: int | None = None
    wns_status: str | None = None
    error_description: str | None = None
    msg_id: str | None = None
    debug_trace: str | None = None
    ms_cv: str | None = None
    device_connection_status: str | None = None
    channel_removed: bool = False

    def to_entity(self, notification_id: str) -> dict[str, object]:
        entity: dict[str, object] = {
            "PartitionKey": notification_id,
            "RowKey": TARGET_PREFIX + self.installation_id,
            "Status": self.status,
            "Attempts": self.attempts,
            "UpdatedAt": self.updated_at,
            "ChannelRemoved": self.channel_removed,
        }
        optional = {
            "Reason": self.reason,
            "StatusCode": self.status_code,
            "WnsStatus": self.wns_status,
            "ErrorDescription": self.error_description,
            "MsgId": self.msg_id,
            "DebugTrace": self.debug_trace,
            "MsCv": self.ms_cv,
            "DeviceConnectionStatus": self.device_connection_status,
        }
        entity.update({k: v for k, v in optional.items() if v is not None})
        return entity

    @classmethod
    def from_entity(cls, entity: dict[str, object]) -> TargetOutcome:
        return cls(
            installation_id=str(entity["RowKey"])[len(TARGET_PREFIX) :],
            status=str(entity["Status"]),
            attempts=int(entity.get("Attempts") or 0),  # type: ignore[arg-type]
            updated_at=entity["UpdatedAt"],  # type: ignore[arg-type]
            reason=entity.get("Reason"),  # type: ignore[arg-type]
            status_code=entity.get("StatusCode"),  # type: ignore[arg-type]
            wns_status=entity.get("WnsStatus"),  # type: ignore[arg-type]
            error_description=entity.get("ErrorDescription"),  # type: ignore[arg-type]
            msg_id=entity.get("MsgId"),  # type: ignore[arg-type]
            debug_trace=entity.get("DebugTrace"),  # type: ignore[arg-type]
            ms_cv=entity.get("MsCv"),  # type: ignore[arg-type]
            device_connection_status=entity.get("DeviceConnectionStatus"),  # type: ignore[arg-type]
            channel_removed=bool(entity.get("ChannelRemoved")),
        )

    def to_api(self) -> dict[str, object]:
        body: dict[str, object] = {
            "installationId": self.installation_id,
            "status": self.status,
            "attempts": self.attempts,
            "updatedAt": self.updated_at.isoformat().replace("+00:00", "Z"),
        }
        if self.reason:
            body["reason"] = self.reason
        if self.channel_removed:
            body["channelRemoved"] = True
        wns = {
            "statusCode": self.status_code,
            "status": self.wns_status,
            "errorDescription": self.error_description,
            "msgId": self.msg_id,
            "debugTrace": self.debug_trace,
            "msCv": self.ms_cv,
            "deviceConnectionStatus": self.device_connection_status,
        }
        wns = {k: v for k, v in wns.items() if v is not None}
        if wns:
            body["wns"] = wns
        return body


@dataclass
class NotificationRecord:
    notification_id: str
    notification_type: str
    target: dict[str, object]
    created_at: datetime
    targeted: int | None
    state: str = "accepted"
    reason: str | None = None
    outcomes: list[TargetOutcome] = field(default_factory=list)
    # Fan-out: targets found so far (sum of page rows) and whether the expansion has finished.
    expanded: int = 0
    fanout_done: bool = False
    send_at: datetime | None = None


class NotificationStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    @property
    def table(self) -> TableClient:
        return self._table

    async def create(self, record: NotificationRecord) -> None:
        entity: dict[str, object] = {
            "PartitionKey": record.notification_id,
            "RowKey": SUMMARY,
            "Type": record.notification_type,
            "Target": json.dumps(record.target),
            "CreatedAt": record.created_at,
            "State": record.state,
        }
        if record.targeted is not None:
            entity["Targeted"] = record.targeted
        if record.send_at is not None:
            entity["SendAt"] = record.send_at
        await self._table.create_entity(entity)

    async def mark(self, notification_id: str, state: str, reason: str | None = None, **extra: object) -> None:
        """Update the summary row (state, reason, counts known later such as `Targeted`)."""
        entity: dict[str, object] = {"PartitionKey": notification_id, "RowKey": SUMMARY, "State": state}
        if reason is not None:
            entity["Reason"] = reason
        entity.update(extra)
        await self._table.upsert_entity(entity)

    async def record_page(self, notification_id: str, seq: int, count: int) -> None:
        """Fan-out progress: batch `seq` carries `count` targets (idempotent if redone)."""
        await self._table.upsert_entity(
            {"PartitionKey": notification_id, "RowKey": f"{PAGE_PREFIX}{seq:08d}", "Count": count}
        )

    async def claim(self, notification_id: str, installation_ids: list[str], batch_id: str, now: datetime) -> list[str]:
        """Mark targets "sending" for this batch; returns those this batch may send to: the
        unclaimed ones, and its own unfinished ones (the same message, redelivered)."""
        rows = []
        for installation_id in installation_ids:
            row = TargetOutcome(installation_id=installation_id, status="sending", attempts=1, updated_at=now)
            rows.append(row.to_entity(notification_id) | {"Batch": batch_id})
        claimed: list[str] = []
        for start in range(0, len(rows), MAX_BATCH):
            chunk = rows[start : start + MAX_BATCH]
            try:
                await self._table.submit_transaction([("create", row) for row in chunk])
                claimed.extend(str(row["RowKey"])[len(TARGET_PREFIX) :] for row in chunk)
                continue
            except (TableTransactionError, ResourceExistsError):
                pass  # some are claimed already: decide one by one
            for row in chunk:
                installation_id = str(row["RowKey"])[len(TARGET_PREFIX) :]
                try:
                    await self._table.create_entity(row)
                except ResourceExistsError:
                    existing = await self._table.get_entity(notification_id, str(row["RowKey"]))
                    if existing.get("Batch") != batch_id or existing.get("Status") != "sending":
                        continue  # another batch's, or finished
                claimed.append(installation_id)
        return claimed

    async def record_outcomes(self, notification_id: str, outcomes: Iterable[TargetOutcome]) -> int:
        """Write target rows in transactions of up to 100; returns the number of transactions."""
        rows = [outcome.to_entity(notification_id) for outcome in outcomes]
        transactions = 0
        for start in range(0, len(rows), MAX_BATCH):
            chunk = rows[start : start + MAX_BATCH]
            if len(chunk) == 1:
                await self._table.upsert_entity(chunk[0])
            else:
                await self._table.submit_transaction([("upsert", row) for row in chunk])
            transactions += 1
        return transactions

    async def get(self, notification_id: str, max_targets: int = 100) -> NotificationRecord | None:
        summary: dict[str, object] | None = None
        outcomes: list[TargetOutcome] = []
        expanded = 0
        try:
            entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": notification_id})
            async for entity in entities:
                if entity["RowKey"] == SUMMARY:
                    summary = entity
                elif str(entity["RowKey"]).startswith(TARGET_PREFIX):
                    outcomes.append(TargetOutcome.from_entity(entity))
                elif str(entity["RowKey"]).startswith(PAGE_PREFIX):
                    expanded += int(entity.get("Count") or 0)  # type: ignore[call-overload]
        except ResourceNotFoundError:
            return None
        if summary is None:
            return None
        return NotificationRecord(
            notification_id=notification_id,
            notification_type=str(summary.get("Type")),
            target=json.loads(str(summary.get("Target") or "{}")),
            created_at=summary["CreatedAt"],  # type: ignore[arg-type]
            targeted=summary.get("Targeted"),  # type: ignore[arg-type]
            state=str(summary.get("State") or "accepted"),
            reason=summary.get("Reason"),  # type: ignore[arg-type]
            outcomes=outcomes,
            expanded=expanded,
            fanout_done=bool(summary.get("FanoutDone")),
            send_at=summary.get("SendAt"),  # type: ignore[arg-type]
        )


def summarize(record: NotificationRecord, now: datetime, max_targets: int = 100) -> dict[str, object]:
    """The API view of a notification: overall status, counts, and per-target detail."""
    delivered = sum(1 for o in record.outcomes if o.status == "delivered")
    failed = [o for o in record.outcomes if o.status == "failed"]
    by_reason: dict[str, int] = {}
    for outcome in failed:
        key = outcome.reason or "unknown"
        by_reason[key] = by_reason.get(key, 0) + 1
    if record.targeted is not None:
        targeted: int | None = record.targeted
        expanding = False
    else:
        targeted = record.expanded
        expanding = not record.fanout_done
    settled = delivered + len(failed)
    pending = max((targeted or 0) - settled, 0)
    if record.state == "failed":
        status = "failed"
    elif not expanding and settled >= (targeted or 0):
        if targeted == 0:
            status = "noTargets"
        elif delivered == targeted:
            status = "delivered"
        elif delivered == 0:
            status = "failed"
        else:
            status = "partiallyDelivered"
    elif record.outcomes or record.expanded:
        status = "inProgress"
    elif record.send_at is not None and record.send_at > now:
        status = "scheduled"
    else:
        status = record.state
    body: dict[str, object] = {
        "id": record.notification_id,
        "type": record.notification_type,
        "target": record.target,
        "status": status,
        "createdAt": record.created_at.isoformat().replace("+00:00", "Z"),
        "counts": {
            "targeted": targeted,
            "delivered": delivered,
            "failed": len(failed),
            "pending": pending,
            "retrying": sum(1 for o in record.outcomes if o.status == "retrying"),
            "channelsRemoved": sum(1 for o in record.outcomes if o.channel_removed),
            "failedByReason": by_reason,
        },
        "targets": [o.to_api() for o in record.outcomes[:max_targets]],
    }
    if expanding:
        body["expanding"] = True
    if record.send_at is not None:
        body["sendAt"] = record.send_at.isoformat().replace("+00:00", "Z")
    if record.reason:
        body["reason"] = record.reason
    return body
