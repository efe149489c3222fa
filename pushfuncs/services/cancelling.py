"""Cancel a scheduled notification that has not fired (pushfuncs/storage/schedule.py decides the race)."""

from __future__ import annotations

from datetime import datetime

from pushfuncs.errors import ApiError, NotFound
from pushfuncs.storage.notifications import NotificationStore, summarize
from pushfuncs.storage.schedule import CancelResult, ScheduleConflict, ScheduleStore

_REFUSALS = {
    CancelResult.STARTED: ("NotificationStarted", "has started sending; it can no longer be cancelled"),
    CancelResult.NOT_SCHEDULED: ("NotScheduled", "was sent at once, not scheduled; there is nothing to cancel"),
}


async def cancel_notification(store: NotificationStore, notification_id: str, now: datetime) -> dict[str, object]:
    """Cancel it and return its status (`cancelled`); cancelling twice is not an error.
    404 if unknown, 409 once it has started or if it was never scheduled."""
    try:
        result = await ScheduleStore(store.table).cancel(notification_id)
    except ScheduleConflict:
        raise ApiError(409, "Conflict", "the notification was changed concurrently; retry the request") from None
    if result is CancelResult.NOT_FOUND:
        raise NotFound(f"notification {notification_id!r} is unknown", "NotificationNotFound")
    if result in _REFUSALS:
        code, reason = _REFUSALS[result]
        raise ApiError(409, code, f"notification {notification_id!r} {reason}")
    record = await store.get(notification_id)
    if record is None:  # expired by retention in between
        raise NotFound(f"notification {notification_id!r} is unknown", "NotificationNotFound")
    return summarize(record, now)
