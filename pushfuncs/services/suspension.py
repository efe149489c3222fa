"""The sending switch: WNS's "410 Domain Blocked" stops all sending until an operator resumes it.

Kept in the notifications table so every instance sees it; each process re-reads it at most
once a minute.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

PARTITION, ROW = "~system", "sending"
CACHE_SECONDS = 60.0


class SendingSwitch:
    def __init__(self, table: TableClient) -> None:
        self._table = table
        self._cached: tuple[float, str | None] | None = None

    async def suspended_reason(self) -> str | None:
        """Why sending is suspended, or None when it is not."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        try:
            entity = await self._table.get_entity(PARTITION, ROW)
            reason: str | None = str(entity.get("Reason") or "suspended")
        except ResourceNotFoundError:
            reason = None
        self._cached = (now, reason)
        return reason

    async def suspend(self, reason: str) -> None:
        await self._table.upsert_entity(
            {"PartitionKey": PARTITION, "RowKey": ROW, "Reason": reason, "At": datetime.now(UTC)}
        )
        self._cached = (time.monotonic(), reason)

    async def resume(self) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await self._table.delete_entity(PARTITION, ROW)
        self._cached = (time.monotonic(), None)
