"""Accept a send request: resolve the target, record the notification, queue the work."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from pushfuncs.context import AppContext
from pushfuncs.errors import NotFound, StorageUnavailable
from pushfuncs.services.messages import DeliveryMessage, DeliveryTarget
from pushfuncs.storage.notifications import NotificationRecord
from pushfuncs.validation import SendRequest

logger = logging.getLogger(__name__)


def new_notification_id() -> str:
    return uuid.uuid4().hex


async def accept_notification(ctx: AppContext, request: SendRequest, now: datetime) -> dict[str, object]:
    """Queue the notification; answers only after the work is safely on the queue."""
    installation_id = request.target.installation_id
    assert installation_id is not None
    installation = await ctx.installations.get(installation_id)
    if installation is None or not installation.is_live(now):
        raise NotFound(
            f"target.installationId: installation {installation_id!r} is not registered or its channel expired",
            "InstallationNotFound",
        )
    notification_id = new_notification_id()
    await ctx.notifications.create(
        NotificationRecord(
            notification_id=notification_id,
            notification_type=request.notification_type.value,
            target=request.target.to_dict(),
            created_at=now,
            targeted=1,
        )
    )
    message = DeliveryMessage(
        notification_id=notification_id,
        notification_type=request.notification_type,
        payload=request.payload,
        options=request.options,
        targets=(DeliveryTarget(installation.installation_id, installation.channel_uri),),
    )
    try:
        await ctx.delivery_queue.send(message.to_dict())
    except Exception as error:
        logger.error("queueing notification %s failed: %s", notification_id, type(error).__name__)
        try:
            await ctx.notifications.mark(notification_id, "failed", "could not be queued; nothing was sent")
        except Exception:
            logger.error("recording the queueing failure of %s failed too", notification_id)
        raise StorageUnavailable() from error
    return {"id": notification_id, "status": "accepted"}
