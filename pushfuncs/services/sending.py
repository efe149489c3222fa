"""Accept a send request: resolve or plan the target, record the notification, queue the work.

A single installation, sent now, costs three storage transactions: the installation read,
the summary row that doubles as the send's outbox, and the outcome merged into it. The send
itself runs in this process right after the answer; if the process stops first, the outbox
recovery (a timer) puts the delivery message on the queue. Everything else (fan-outs,
scheduled sends, retries) travels through the queues.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from datetime import datetime

from azure.core.exceptions import ResourceExistsError

from pushfuncs.context import AppContext
from pushfuncs.errors import ApiError, InvalidField, NotFound
from pushfuncs.services.delivery import DeliveryService
from pushfuncs.services.messages import DeliveryMessage, DeliveryTarget, FanoutMessage
from pushfuncs.services.outbox import DIRECT_SEND_WINDOW
from pushfuncs.storage.installations import Installation
from pushfuncs.storage.notifications import (
    OUTBOX_DELIVERY,
    OUTBOX_FANOUT,
    NotificationRecord,
    new_notification_id,
)
from pushfuncs.templates import TemplateError, render
from pushfuncs.validation import SendRequest
from pushfuncs.wns import NotificationType

logger = logging.getLogger(__name__)

IDEMPOTENCY_PREFIX = "idem-"
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
    """Accept the notification; answers only after its work is stored (the summary row's outbox).

    Exactly one request creates the summary row (insert-if-absent), and only that one queues or
    sends: with one `Idempotency-Key`, any number of concurrent requests make one notification
    and at most one delivery per target (tests/integration/test_send_concurrency.py).
    """
    suspended = await ctx.sending.suspended_reason()
    if suspended is not None:
        raise ApiError(503, "SendingSuspended", f"sending is suspended ({suspended}); nothing was accepted")
    notification_id = new_notification_id(now)
    idempotency_row: str | None = None
    if idempotency_key is not None:
        notification_id = await _claim_idempotency_key(ctx, idempotency_key, notification_id, fingerprint)
        idempotency_row = _idempotency_row(idempotency_key)[0]
    delay = max(0.0, (request.send_at - now).total_seconds()) if request.send_at else 0.0
    target = request.target
    direct: DeliveryMessage | None = None
    if target.installation_id is not None and not delay:
        # Sent now: resolved now. A scheduled send resolves its target when it fires (fan-out).
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
        direct = DeliveryMessage(
            notification_id=notification_id,
            notification_type=kind,
            payload=payload,
            options=request.options,
            targets=(DeliveryTarget(installation.installation_id, installation.channel_uri),),
            # Claimed like a fan-out batch: if this message is ever queued twice, one sends.
            claim=True,
            batch_id=uuid.uuid4().hex,
            seq=0,
        )
    fanout = FanoutMessage(
        notification_id=notification_id,
        notification_type=request.notification_type,
        payload=request.payload,
        options=request.options,
        # A long id list stays on the summary row: a queue message holds 64 KiB.
        target={"installationIds": []} if target.installation_ids else target.to_dict(),
        template=request.template,
        properties=request.properties,
        ids_in_summary=bool(target.installation_ids),
        scheduled=bool(delay),
    )
    in_background = direct is not None and len(ctx.background) < MAX_SENDS_IN_BACKGROUND
    if direct is not None:
        work, queue_name = direct.to_dict(), OUTBOX_DELIVERY
    else:
        work, queue_name = fanout.to_dict(), OUTBOX_FANOUT
    created = await ctx.notifications.create(
        NotificationRecord(
            notification_id=notification_id,
            notification_type=(f"template:{request.template}" if request.template else request.notification_type.value),
            target=target.to_dict(),
            created_at=now,
            targeted=1 if target.installation_id is not None else None,
            send_at=request.send_at,
        ),
        work=json.dumps(work, separators=(",", ":")),
        queue=queue_name,
        idempotency_row=idempotency_row,
    )
    status = "scheduled" if delay else "accepted"
    if not created:
        # Another request with this key stored it first: that one sends (or the outbox recovery).
        return {"id": notification_id, "status": status, "idempotentReplay": True}
    if direct is not None and in_background:
        send_by = time.monotonic() + DIRECT_SEND_WINDOW.total_seconds()
        ctx.background.start(DeliveryService(ctx).deliver_direct(direct, send_by), name=f"send of {notification_id}")
        return {"id": notification_id, "status": status}
    queue = ctx.delivery_queue if queue_name == OUTBOX_DELIVERY else ctx.fanout_queue
    try:
        await queue.send(work, delay_seconds=delay)
        await ctx.notifications.mark_outbox(notification_id, "queued")
    except Exception as error:
        # The work is stored: the outbox recovery queues it within minutes.
        logger.warning("queueing notification %s failed (%s); the outbox recovery will", notification_id, error)
    return {"id": notification_id, "status": status}


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


async def _claim_idempotency_key(ctx: AppContext, key: str, notification_id: str, fingerprint: str) -> str:
    """The notification id this key stands for: `notification_id` if this request is the first
    to use the key (insert-if-absent decides), else the earlier request's."""
    pk, rk = _idempotency_row(key)
    table = ctx.notifications.table
    try:
        await table.create_entity(
            {"PartitionKey": pk, "RowKey": rk, "NotificationId": notification_id, "Fingerprint": fingerprint}
        )
        return notification_id
    except ResourceExistsError:
        entity = await table.get_entity(pk, rk)
    if entity.get("Fingerprint") != fingerprint:
        raise ApiError(
            422,
            "IdempotencyKeyReused",
            "Idempotency-Key was already used for a different request; use a new key",
            "Idempotency-Key",
        )
    return str(entity["NotificationId"])
