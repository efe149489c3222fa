"""What a queue message that is given up on leaves behind: its notification marked failed."""

from __future__ import annotations

import logging

from pushfuncs.services.messages import notification_id_of
from pushfuncs.storage.notifications import NotificationStore

logger = logging.getLogger(__name__)


async def record_abandoned(store: NotificationStore, body: bytes, reason: str) -> None:
    """Best effort: mark the message's notification failed with `reason` (if it names one)."""
    notification_id = notification_id_of(body)
    if notification_id is None:
        return
    try:
        await store.mark(notification_id, "failed", reason)
    except Exception as error:
        logger.error("could not record the failure of %s: %s", notification_id, type(error).__name__)
