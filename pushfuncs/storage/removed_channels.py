"""The feed of channels delivery removed (WNS answered 404 or 410): installation, channel, answer, time.

Rows live in the notifications table, one partition per UTC day, whose key begins with the
12-hex-digit time of the day's end (`<end>-removed`), as notification ids begin with theirs. So
the retention timer (pushfuncs/services/retention.py), which deletes every partition whose key
is below `now - NOTIFICATION_RETENTION_DAYS` in one key-range query, deletes a day of the feed
once its last row is that old, with no code of its own. RowKeys begin with the removal time, so
a day reads in time order.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.data.tables.aio import TableClient

from pushfuncs.storage.notifications import id_time_prefix

SUFFIX = "-removed"


def day_partition(moment: datetime) -> str:
    """The partition of the feed rows removed on `moment`'s UTC day."""
    day_end = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    return f"{id_time_prefix(day_end)}{SUFFIX}"


@dataclass(frozen=True)
class RemovedChannel:
    installation_id: str
    channel_uri: str
    status_code: int
    error_description: str | None
    removed_at: datetime
    notification_id: str

    def to_api(self) -> dict[str, object]:
        return {
            "installationId": self.installation_id,
            "channelUri": self.channel_uri,
            "wns": {"statusCode": self.status_code, "errorDescription": self.error_description},
            "removedAt": self.removed_at.isoformat().replace("+00:00", "Z"),
            "notificationId": self.notification_id,
        }


class RemovedChannelFeed:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def record(self, removed: RemovedChannel) -> None:
        await self._table.create_entity(
            {
                "PartitionKey": day_partition(removed.removed_at),
                "RowKey": f"{id_time_prefix(removed.removed_at)}-{secrets.token_hex(6)}",
                "InstallationId": removed.installation_id,
                "ChannelUri": removed.channel_uri,
                "StatusCode": removed.status_code,
                "ErrorDescription": removed.error_description or "",
                "RemovedAt": removed.removed_at,
                "NotificationId": removed.notification_id,
            }
        )

    async def day(self, partition: str, after: str, limit: int) -> tuple[list[tuple[str, RemovedChannel]], bool]:
        """Up to `limit` rows of one day after RowKey `after`, with their RowKeys; and whether more follow."""
        rows: list[tuple[str, RemovedChannel]] = []
        entities: AsyncIterator[dict[str, object]] = self._table.query_entities(
            "PartitionKey eq @pk and RowKey gt @after",
            parameters={"pk": partition, "after": after},
            results_per_page=min(limit + 1, 1000),
        )
        async for entity in entities:
            if len(rows) == limit:
                return rows, True
            rows.append(
                (
                    str(entity["RowKey"]),
                    RemovedChannel(
                        installation_id=str(entity["InstallationId"]),
                        channel_uri=str(entity["ChannelUri"]),
                        status_code=int(entity["StatusCode"]),  # type: ignore[call-overload]
                        error_description=str(entity.get("ErrorDescription") or "") or None,
                        removed_at=entity["RemovedAt"],  # type: ignore[arg-type]
                        notification_id=str(entity["NotificationId"]),
                    ),
                )
            )
        return rows, False
