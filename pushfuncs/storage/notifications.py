"""Notification status: one partition per notification.

Notification ids start with their creation time in milliseconds (12 hex digits), so the
partitions of a time window are one key range: the outbox recovery scans it, and retention
deletes the notifications past it by that range (`services/retention.py`).

Rows: `summary` (for a single-installation send also its outbox: `Work`, the delivery
message, and `Outbox` pending | done | queued, and the send's first outcome); `p:<seq>`
fan-out progress (targets in delivery batch `seq`); `c:<seq>` the claim of a delivery
batch; `b:<batch>:a<attempt>` the outcomes of one delivery batch attempt, as compact JSON
(one write per batch of up to 100 targets, not one per target). Each delivery writes only
its own rows, so many deliveries record outcomes at once without a hot entity; a status
read is one single-partition query that merges the batch rows (later attempts win).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError
from azure.data.tables.aio import TableClient

from pushfuncs.storage.plain_write import RowValue, merge_row

SUMMARY = "summary"
# Which queue an outbox's work goes to.
OUTBOX_DELIVERY = "delivery"
OUTBOX_FANOUT = "fanout"
SYSTEM_PARTITION = "~system"
OUTBOX_CURSOR_ROW = "outbox-cursor"
RETENTION_CURSOR_ROW = "retention-cursor"
# On the summary of a send made with an Idempotency-Key: the PartitionKey of the key's row,
# whose RowKey is always IDEMPOTENCY_ROW_KEY; retention deletes it with the notification.
IDEMPOTENCY_ROW = "IdempotencyRow"
IDEMPOTENCY_ROW_KEY = "key"
PAGE_PREFIX = "p:"
CLAIM_PREFIX = "c:"
BATCH_PREFIX = "b:"
LANE_DONE_PREFIX = "d:"
# A Table Storage string property holds at most 32K characters; outcomes are split across
# properties O0, O1, ... of this size.
CHUNK_CHARS = 30_000

# Compact JSON field names of a stored outcome.
_FIELDS = {
    "status": "s",
    "attempts": "a",
    "reason": "r",
    "status_code": "c",
    "wns_status": "w",
    "error_description": "e",
    "msg_id": "m",
    "debug_trace": "t",
    "ms_cv": "v",
    "device_connection_status": "d",
    "channel_removed": "x",
}


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

    def to_compact(self) -> dict[str, object]:
        # Written out rather than looped over _FIELDS: one of these per target of every batch.
        compact: dict[str, object] = {"s": self.status, "a": self.attempts}
        for short, value in (
            ("r", self.reason),
            ("c", self.status_code),
            ("w", self.wns_status),
            ("e", self.error_description),
            ("m", self.msg_id),
            ("t", self.debug_trace),
            ("v", self.ms_cv),
            ("d", self.device_connection_status),
        ):
            if value is not None:
                compact[short] = value
        if self.channel_removed:
            compact["x"] = True
        return compact

    @classmethod
    def from_compact(cls, installation_id: str, data: dict[str, object], updated_at: datetime) -> TargetOutcome:
        fields = {name: data.get(short) for name, short in _FIELDS.items()}
        fields["channel_removed"] = bool(fields["channel_removed"])
        fields["attempts"] = int(fields["attempts"] or 1)  # type: ignore[call-overload]
        return cls(installation_id=installation_id, updated_at=updated_at, **fields)  # type: ignore[arg-type]

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


@dataclass(frozen=True)
class OutboxWork:
    notification_id: str
    message: str  # the queue message, JSON
    queue: str  # OUTBOX_DELIVERY or OUTBOX_FANOUT
    send_at: datetime | None


def new_notification_id(now: datetime) -> str:
    """32 hex digits: creation time in milliseconds, then 80 random bits."""
    return f"{id_time_prefix(now)}{secrets.token_hex(10)}"


def id_time_prefix(moment: datetime) -> str:
    return f"{max(0, int(moment.timestamp() * 1000)):012x}"


def id_time(notification_id: str) -> datetime | None:
    """When a notification was created, read from its id (None for ids of another shape)."""
    try:
        return datetime.fromtimestamp(int(notification_id[:12], 16) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


class NotificationStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    @property
    def table(self) -> TableClient:
        return self._table

    async def create(
        self,
        record: NotificationRecord,
        work: str | None = None,
        queue: str = OUTBOX_DELIVERY,
        idempotency_row: str | None = None,
    ) -> bool:
        """Write the summary row if absent (False if it exists: an idempotent replay, or a race
        with one). With `work` (the queue message that carries the send) the row is also its
        outbox: pending until the message is queued or the send done, so a process that stops
        in between loses nothing (`pending_outbox`)."""
        entity: dict[str, object] = {
            "PartitionKey": record.notification_id,
            "RowKey": SUMMARY,
            "Type": record.notification_type,
            **_target_properties(record.target),
            "CreatedAt": record.created_at,
            "State": record.state,
        }
        if record.targeted is not None:
            entity["Targeted"] = record.targeted
        if record.send_at is not None:
            entity["SendAt"] = record.send_at
        if work is not None:
            entity.update(_split_property("Work", work))
            entity["Outbox"] = "pending"
            entity["OutboxQueue"] = queue
        if idempotency_row is not None:
            entity["IdempotencyRow"] = idempotency_row
        try:
            await self._table.create_entity(entity)
        except ResourceExistsError:
            return False
        return True

    async def target_of(self, notification_id: str) -> dict[str, object]:
        """The target as accepted (fan-out reads long id lists from here, not from its message)."""
        return _target_from(await self._table.get_entity(notification_id, SUMMARY))

    async def record_direct_outcomes(self, notification_id: str, outcomes: list[TargetOutcome], now: datetime) -> None:
        """A single-installation send's first outcome, merged into its summary (closes the outbox)."""
        await self._table.upsert_entity(
            {
                "PartitionKey": notification_id,
                "RowKey": SUMMARY,
                "O0": _outcomes_text(outcomes),
                "UpdatedAt": now,
                "Outbox": "done",
            }
        )

    async def pending_outbox(self, created_from: datetime, created_before: datetime) -> AsyncIterator[OutboxWork]:
        """Sends accepted in the window whose work never reached its queue or WNS: the process
        that should have queued or sent them stopped first."""
        rows = self._table.query_entities(
            "PartitionKey ge @lo and PartitionKey lt @hi and RowKey eq @summary and Outbox eq 'pending'",
            parameters={"lo": id_time_prefix(created_from), "hi": id_time_prefix(created_before), "summary": SUMMARY},
        )
        async for row in rows:
            yield OutboxWork(
                notification_id=str(row["PartitionKey"]),
                message=_joined_property(row, "Work"),
                queue=str(row.get("OutboxQueue") or OUTBOX_DELIVERY),
                send_at=row.get("SendAt"),  # type: ignore[arg-type]
            )

    async def mark_outbox(self, notification_id: str, state: str) -> None:
        await self._table.upsert_entity({"PartitionKey": notification_id, "RowKey": SUMMARY, "Outbox": state})

    async def outbox_cursor(self) -> datetime | None:
        try:
            entity = await self._table.get_entity(SYSTEM_PARTITION, OUTBOX_CURSOR_ROW)
        except ResourceNotFoundError:
            return None
        return entity.get("Until")  # type: ignore[return-value]

    async def save_outbox_cursor(self, until: datetime) -> None:
        await self._table.upsert_entity({"PartitionKey": SYSTEM_PARTITION, "RowKey": OUTBOX_CURSOR_ROW, "Until": until})

    async def mark(self, notification_id: str, state: str, reason: str | None = None, **extra: object) -> None:
        """Update the summary row (state, reason, counts known later such as `Targeted`)."""
        entity: dict[str, object] = {"PartitionKey": notification_id, "RowKey": SUMMARY, "State": state}
        if reason is not None:
            entity["Reason"] = reason
        entity.update(extra)
        await self._table.upsert_entity(entity)

    async def note_progress(self, notification_id: str, **values: object) -> None:
        """Merge progress (`Lanes`, `FanoutDone`, ...) into the summary, leaving its state alone:
        a notification marked failed meanwhile stays failed."""
        await self._table.upsert_entity({"PartitionKey": notification_id, "RowKey": SUMMARY, **values})

    async def record_pages(self, notification_id: str, pages: list[tuple[int, int]]) -> None:
        """Fan-out progress of several batches (seq, count) in one entity-group transaction."""
        for start in range(0, len(pages), 100):
            await self._table.submit_transaction(
                [
                    ("upsert", {"PartitionKey": notification_id, "RowKey": f"{PAGE_PREFIX}{seq:08d}", "Count": count})
                    for seq, count in pages[start : start + 100]
                ]
            )

    async def record_lane_done(self, notification_id: str, lane: int) -> None:
        """One lane of a parallel fan-out has expanded its whole source."""
        await self._table.upsert_entity({"PartitionKey": notification_id, "RowKey": f"{LANE_DONE_PREFIX}{lane:04d}"})

    async def claim_batch(self, notification_id: str, seq: int, batch_id: str) -> bool:
        """Claim fan-out batch `seq` for the message `batch_id`. False if another message
        (the same page expanded twice after a crash) has claimed it: that one sends."""
        row = {"PartitionKey": notification_id, "RowKey": f"{CLAIM_PREFIX}{seq:08d}", "Batch": batch_id}
        try:
            await self._table.create_entity(row)
            return True
        except ResourceExistsError:
            existing = await self._table.get_entity(notification_id, row["RowKey"])
            return existing.get("Batch") == batch_id  # the same message, delivered again

    async def record_outcomes(
        self,
        notification_id: str,
        batch_key: str,
        attempt: int,
        outcomes: list[TargetOutcome],
        now: datetime,
        part: str = "",
        chunk: str = "",
    ) -> None:
        """Write the outcomes of one delivery batch attempt as one row."""
        text = _outcomes_text(outcomes)
        row: dict[str, RowValue] = {
            "PartitionKey": notification_id,
            "RowKey": _batch_row(batch_key, attempt, part) + (f":f{chunk}" if chunk else ""),
            "UpdatedAt": now,
        }
        for index in range(0, max(len(text), 1), CHUNK_CHARS):
            row[f"O{index // CHUNK_CHARS}"] = text[index : index + CHUNK_CHARS]
        await merge_row(self._table, row)  # as `upsert_entity`, without the SDK's serializer

    async def settled_targets(self, notification_id: str, batch_key: str, attempt: int, part: str) -> set[str]:
        """Targets of this batch attempt whose final outcome an earlier run recorded."""
        base = _batch_row(batch_key, attempt, part) + ":f"
        settled: set[str] = set()
        rows = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": notification_id, "lo": base, "hi": base[:-1] + "g"},
        )
        async for row in rows:
            for installation_id, data in _outcomes_json(row).items():
                if data.get("s") in ("delivered", "failed"):
                    settled.add(installation_id)
        return settled

    async def get(self, notification_id: str, max_targets: int = 100) -> NotificationRecord | None:
        summary: dict[str, object] | None = None
        batch_rows: list[dict[str, object]] = []
        expanded = 0
        lanes_done = 0
        try:
            entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": notification_id})
            async for entity in entities:
                if entity["RowKey"] == SUMMARY:
                    summary = entity
                elif str(entity["RowKey"]).startswith(BATCH_PREFIX):
                    batch_rows.append(entity)
                elif str(entity["RowKey"]).startswith(PAGE_PREFIX):
                    expanded += int(entity.get("Count") or 0)  # type: ignore[call-overload]
                elif str(entity["RowKey"]).startswith(LANE_DONE_PREFIX):
                    lanes_done += 1
        except ResourceNotFoundError:
            return None
        if summary is None:
            return None
        merged: dict[str, TargetOutcome] = {}
        # A single send's first outcome is on the summary; retries follow in batch rows, which
        # come in RowKey order, so a later attempt overrides an earlier one.
        for entity in ([summary] if "O0" in summary else []) + batch_rows:
            for installation_id, data in _outcomes_json(entity).items():
                merged[installation_id] = TargetOutcome.from_compact(
                    installation_id,
                    data,
                    entity["UpdatedAt"],  # type: ignore[arg-type]
                )
        return NotificationRecord(
            notification_id=notification_id,
            notification_type=str(summary.get("Type")),
            target=_target_from(summary),
            created_at=summary["CreatedAt"],  # type: ignore[arg-type]
            targeted=summary.get("Targeted"),  # type: ignore[arg-type]
            state=str(summary.get("State") or "accepted"),
            reason=summary.get("Reason"),  # type: ignore[arg-type]
            outcomes=list(merged.values()),
            expanded=expanded,
            fanout_done=bool(summary.get("FanoutDone"))
            or (bool(summary.get("Lanes")) and lanes_done >= int(summary.get("Lanes") or 0)),  # type: ignore[call-overload]
            send_at=summary.get("SendAt"),  # type: ignore[arg-type]
        )

    async def keys_created_before(self, start: str, cutoff: str) -> AsyncIterator[tuple[str, str, str | None]]:
        """(PartitionKey, RowKey, IdempotencyRow) of every row with start <= PartitionKey < cutoff,
        in key order: one range query that reads keys only."""
        rows = self._table.query_entities(
            "PartitionKey ge @lo and PartitionKey lt @hi",
            parameters={"lo": start, "hi": cutoff},
            select=["PartitionKey", "RowKey", IDEMPOTENCY_ROW],
        )
        async for row in rows:
            yield str(row["PartitionKey"]), str(row["RowKey"]), row.get(IDEMPOTENCY_ROW) or None

    async def delete_rows(self, notification_id: str, row_keys: list[str]) -> None:
        """Delete up to 100 rows of one notification in one entity-group transaction."""
        try:
            await self._table.submit_transaction(
                [("delete", {"PartitionKey": notification_id, "RowKey": rk}) for rk in row_keys]
            )
        except TableTransactionError as error:
            if error.status_code != 404:
                raise
            # Some row was already gone (a concurrent run): the rest one by one.
            for rk in row_keys:
                with contextlib.suppress(ResourceNotFoundError):
                    await self._table.delete_entity(notification_id, rk)

    async def delete_idempotency_row(self, partition: str, notification_id: str) -> bool:
        """Forget the Idempotency-Key row `partition` if it still names this notification
        (a replay after it went may have claimed the key for a new one: that stays)."""
        try:
            entity = await self._table.get_entity(partition, IDEMPOTENCY_ROW_KEY)
        except ResourceNotFoundError:
            return False
        if entity.get("NotificationId") != notification_id:
            return False
        try:
            await self._table.delete_entity(
                partition,
                IDEMPOTENCY_ROW_KEY,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            return False
        return True

    async def retention_cursor(self) -> str | None:
        """The PartitionKey the next retention run starts from (every one before it is gone)."""
        try:
            entity = await self._table.get_entity(SYSTEM_PARTITION, RETENTION_CURSOR_ROW)
        except ResourceNotFoundError:
            return None
        return str(entity["From"])

    async def save_retention_cursor(self, start: str) -> None:
        await self._table.upsert_entity(
            {"PartitionKey": SYSTEM_PARTITION, "RowKey": RETENTION_CURSOR_ROW, "From": start}
        )


def _split_property(name: str, text: str) -> dict[str, str]:
    """`text` (ASCII) as `name`, `name1`, ...: each under Table Storage's 32K-character limit."""
    chunks = [text[start : start + CHUNK_CHARS] for start in range(0, len(text), CHUNK_CHARS)] or [""]
    return {f"{name}{index or ''}": chunk for index, chunk in enumerate(chunks)}


def _joined_property(entity: dict[str, object], name: str) -> str:
    parts = [str(entity.get(name) or "")]
    index = 1
    while f"{name}{index}" in entity:
        parts.append(str(entity[f"{name}{index}"]))
        index += 1
    return "".join(parts)


def _target_properties(target: dict[str, object]) -> dict[str, str]:
    """The target as `Target`, `Target1`, ...: an id list within a 64 KiB body passes one property's 32K."""
    text = json.dumps(target, separators=(",", ":"))  # ASCII: characters are what Table Storage counts
    chunks = [text[start : start + CHUNK_CHARS] for start in range(0, len(text), CHUNK_CHARS)]
    return {f"Target{index or ''}": chunk for index, chunk in enumerate(chunks)}


def _target_from(summary: dict[str, object]) -> dict[str, object]:
    parts = [str(summary.get("Target") or "")]
    index = 1
    while f"Target{index}" in summary:
        parts.append(str(summary[f"Target{index}"]))
        index += 1
    return json.loads("".join(parts) or "{}")


def _batch_row(batch_key: str, attempt: int, part: str) -> str:
    # Attempt before part: in RowKey order a later attempt of a target still comes later.
    return f"{BATCH_PREFIX}{batch_key}:a{attempt:03d}" + (f":{part}" if part else "")


def _outcomes_text(outcomes: list[TargetOutcome]) -> str:
    return json.dumps({o.installation_id: o.to_compact() for o in outcomes}, separators=(",", ":"))


def _outcomes_json(entity: dict[str, object]) -> dict[str, dict[str, object]]:
    text = "".join(str(entity[f"O{i}"]) for i in range(len(entity)) if f"O{i}" in entity)
    return json.loads(text or "{}")


def targets_token(installation_id: str) -> str:
    """The opaque continuation of a status's targets: the last installation id shown."""
    return base64.urlsafe_b64encode(installation_id.encode()).decode("ascii").rstrip("=")


def targets_after(token: str) -> str | None:
    """The installation id a `targets_token` stands for; None if it is not one."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return text if 0 < len(text) <= 128 and text.isprintable() else None


def summarize(
    record: NotificationRecord, now: datetime, max_targets: int = 100, after: str | None = None
) -> dict[str, object]:
    """The API view of a notification: overall status, counts, and per-target detail, in
    installation id order: `max_targets` of them after the installation id `after`, and a
    `continuationToken` when more follow."""
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
    if record.state in ("failed", "cancelled"):
        status = record.state
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
    }
    ordered = sorted(record.outcomes, key=lambda o: o.installation_id)
    if after is not None:
        ordered = [o for o in ordered if o.installation_id > after]
    body["targets"] = [o.to_api() for o in ordered[:max_targets]]
    if len(ordered) > max_targets:
        body["continuationToken"] = targets_token(ordered[max_targets - 1].installation_id)
    if expanding:
        body["expanding"] = True
    if record.send_at is not None:
        body["sendAt"] = record.send_at.isoformat().replace("+00:00", "Z")
    if record.reason:
        body["reason"] = record.reason
    return body
