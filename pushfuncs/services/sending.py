"""Accept a send request: resolve or plan the target, record the notification, queue the work.

A single installation, sent now, costs three storage transactions: the installation read,
the summary row that doubles as the send's outbox, and the outcome merged into it. The send
itself runs in this process right after the answer; if the process stops first, the outbox
recovery (a timer) puts the delivery message on the queue. Everything else (fan-outs,
scheduled sends, retries) travels through the queues.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from datetime import datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from pushfuncs.context import AppContext
from pushfuncs.errors import ApiError, InvalidField, NotFound, StorageUnavailable
from pushfuncs.services.delivery import DeliveryService
from pushfuncs.services.messages import DeliveryMessage, DeliveryTarget, FanoutMessage
from pushfuncs.storage.installations import Installation
from pushfuncs.storage.notifications import NotificationRecord, new_notification_id
from pushfuncs.templates import TemplateError, render
from pushfuncs.validation import SendRequest
from pushfuncs.wns import NotificationType

logger = logging.getLogger(__name__)

IDEMPOTENCY_PREFIX = "idem-"
# A Table Storage string property holds 32K characters; larger work goes through the queue.
MAX_OUTBOX_CHARS = 30_000
# Single sends an instance runs after answering, at most; beyond that (WNS slow, a burst) they
# go through the delivery queue, so memory stays bounded and other instances can help.
MAX_SENDS_IN_BACKGROUND = 500


def request_fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def accept_notification(
    ctx: AppContext,
    request: SendRequest,
    now: datetime,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> dict[str, object]:
    """Accept the notification; answers only after the work is safely stored (outbox row or queue)."""
    suspended = await ctx.sending.suspended_reason()
    if suspended is not None:
        raise ApiError(503, "SendingSuspended", f"sending is suspended ({suspended}); nothing was accepted")
    notification_id = new_notification_id(now)
    if idempotency_key is not None:
        earlier = await _claim_idempotency_key(ctx, idempotency_key, notification_id, fingerprint)
        if earlier is not None:
            notification_id, queued = earlier
            if queued:
                return {"id": notification_id, "status": "accepted", "idempotentReplay": True}
    delay = max(0.0, (request.send_at - now).total_seconds()) if request.send_at else 0.0
    target = request.target
    direct: DeliveryMessage | None = None
    work: str | None = None
    if target.installation_id is not None:
        installation = await ctx.installations.get(target.installation_id)
        if installation is None or not installation.is_live(now):
            raise NotFound(
                f"target.installationId: installation {target.installation_id!r} is not registered"
                " or its channel expired",
                "InstallationNotFound",
            )
        kind, payload = request.notification_type, request.payload
        if request.template is not None:
            kind, payload = _render_for(installation, request.template, request.properties)
        queue = ctx.delivery_queue
        delivery = DeliveryMessage(
            notification_id=notification_id,
            notification_type=kind,
            payload=payload,
            options=request.options,
            targets=(DeliveryTarget(installation.installation_id, installation.channel_uri),),
        )
        message: dict[str, object] = delivery.to_dict()
        targeted: int | None = 1
        if not delay and len(ctx.background) < MAX_SENDS_IN_BACKGROUND:
            text = json.dumps(message, separators=(",", ":"))
            if len(text) <= MAX_OUTBOX_CHARS:
                direct, work = delivery, text
    else:
        queue = ctx.fanout_queue
        message = FanoutMessage(
            notification_id=notification_id,
            notification_type=request.notification_type,
            payload=request.payload,
            options=request.options,
            target=target.to_dict(),
            template=request.template,
            properties=request.properties,
        ).to_dict()
        targeted = None
    # Exists already when an idempotent retry resumes an acceptance that was cut short.
    with contextlib.suppress(ResourceExistsError):
        await ctx.notifications.create(
            NotificationRecord(
                notification_id=notification_id,
                notification_type=(
                    f"template:{request.template}" if request.template else request.notification_type.value
                ),
                target=target.to_dict(),
                created_at=now,
                targeted=targeted,
                send_at=request.send_at,
            ),
            work=work,
        )
    if direct is not None:
        ctx.background.start(DeliveryService(ctx).deliver_direct(direct), name=f"send of {notification_id}")
        if idempotency_key is not None:
            await _mark_idempotency_key_queued(ctx, idempotency_key)
        return {"id": notification_id, "status": "accepted"}
    try:
        await queue.send(message, delay_seconds=delay)
    except Exception as error:
        logger.error("queueing notification %s failed: %s", notification_id, type(error).__name__)
        try:
            await ctx.notifications.mark(notification_id, "failed", "could not be queued; nothing was sent")
        except Exception:
            logger.error("recording the queueing failure of %s failed too", notification_id)
        raise StorageUnavailable() from error
    if idempotency_key is not None:
        await _mark_idempotency_key_queued(ctx, idempotency_key)
    return {"id": notification_id, "status": "scheduled" if delay else "accepted"}


def _render_for(installation: Installation, name: str, properties: dict[str, str]) -> tuple[NotificationType, bytes]:
    template = installation.templates.get(name)
    if template is None:
        raise ApiError(
            404,
            "TemplateNotFound",
            f"template: installation {installation.installation_id!r} has no template {name!r}",
            "template",
        )
    try:
        return template.notification_type, render(template, properties)
    except TemplateError as error:
        raise InvalidField("template", str(error)) from error


def _idempotency_row(key: str) -> tuple[str, str]:
    return IDEMPOTENCY_PREFIX + hashlib.sha256(key.encode()).hexdigest(), "key"


async def _claim_idempotency_key(
    ctx: AppContext, key: str, notification_id: str, fingerprint: str
) -> tuple[str, bool] | None:
    """None if this request is the first with `key`; else the earlier id and whether it was queued."""
    pk, rk = _idempotency_row(key)
    table = ctx.notifications.table
    try:
        await table.create_entity(
            {"PartitionKey": pk, "RowKey": rk, "NotificationId": notification_id, "Fingerprint": fingerprint}
        )
        return None
    except ResourceExistsError:
        pass
    try:
        entity = await table.get_entity(pk, rk)
    except ResourceNotFoundError:
        return None
    if entity.get("Fingerprint") != fingerprint:
        raise ApiError(
            422,
            "IdempotencyKeyReused",
            "Idempotency-Key was already used for a different request; use a new key",
            "Idempotency-Key",
        )
    return str(entity["NotificationId"]), bool(entity.get("Queued"))


async def _mark_idempotency_key_queued(ctx: AppContext, key: str) -> None:
    pk, rk = _idempotency_row(key)
    await ctx.notifications.table.upsert_entity({"PartitionKey": pk, "RowKey": rk, "Queued": True})
