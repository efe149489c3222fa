"""Who wins between cancelling a scheduled notification and its firing: one conditional write.

A scheduled send waits on the fan-out queue with a visibility delay. Both sides decide on the
summary row's `Schedule` property (absent while waiting, then `fired` or `cancelled`) with a
write made `If-Match` on the ETag they read: the firing fan-out claims `fired` before it expands
anything, a cancel claims `cancelled`. Whoever writes second finds the ETag changed, reads again
and sees the other's claim, so exactly one of them wins, whatever the interleaving
(tests/integration/test_cancel_notification.py races them).
"""

from __future__ import annotations

import enum

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from pushfuncs.storage.notifications import SUMMARY

SCHEDULE = "Schedule"
FIRED = "fired"
CANCELLED = "cancelled"
# Other writers touch the summary too (the outbox mark, progress); each lost round means one did.
MAX_ROUNDS = 20


class CancelResult(enum.Enum):
    CANCELLED = "cancelled"  # this call cancelled it
    ALREADY_CANCELLED = "alreadyCancelled"
    STARTED = "started"  # it fired first: too late
    NOT_SCHEDULED = "notScheduled"  # a send for now, never waiting
    NOT_FOUND = "notFound"


class ScheduleConflict(RuntimeError):
    """The summary changed in every round: retried by the caller (or the queue)."""


class ScheduleStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def cancel(self, notification_id: str) -> CancelResult:
        """Cancel the scheduled notification unless it has fired (or was not scheduled)."""
        for _ in range(MAX_ROUNDS):
            try:
                summary = await self._table.get_entity(notification_id, SUMMARY)
            except ResourceNotFoundError:
                return CancelResult.NOT_FOUND
            state = summary.get(SCHEDULE)
            if state == CANCELLED:
                return CancelResult.ALREADY_CANCELLED
            if state == FIRED:
                return CancelResult.STARTED
            if summary.get("SendAt") is None:
                return CancelResult.NOT_SCHEDULED
            if await self._claim(summary, {SCHEDULE: CANCELLED, "State": CANCELLED}):
                return CancelResult.CANCELLED
        raise ScheduleConflict(notification_id)

    async def fire(self, notification_id: str) -> bool:
        """Claim the notification for sending; False if it was cancelled first (send nothing).
        True again for a message that comes back after its claim (a crash after claiming)."""
        for _ in range(MAX_ROUNDS):
            try:
                summary = await self._table.get_entity(notification_id, SUMMARY)
            except ResourceNotFoundError:
                return True  # nothing to claim against; the fan-out records what it finds
            state = summary.get(SCHEDULE)
            if state in (FIRED, CANCELLED):
                return state == FIRED
            if summary.get("SendAt") is None:
                return True  # sent at once: there was never anything to cancel, so no write
            if await self._claim(summary, {SCHEDULE: FIRED}):
                return True
        raise ScheduleConflict(notification_id)

    async def _claim(self, summary: dict[str, object], values: dict[str, object]) -> bool:
        try:
            await self._table.update_entity(
                {"PartitionKey": summary["PartitionKey"], "RowKey": SUMMARY, **values},
                mode=UpdateMode.MERGE,
                etag=summary.metadata["etag"],  # type: ignore[attr-defined]
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True
