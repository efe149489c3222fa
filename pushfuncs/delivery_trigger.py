"""Queue trigger: deliver the messages of the delivery queue to WNS."""

from __future__ import annotations

import logging

import azure.functions as func

from pushfuncs.context import get_context
from pushfuncs.host_config import max_dequeue_count
from pushfuncs.services.delivery import DeliveryService

logger = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.function_name("deliver_notifications")
@bp.queue_trigger(arg_name="msg", queue_name="%DELIVERY_QUEUE%", connection="AzureWebJobsStorage")
async def deliver_notifications(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    ctx = await get_context()
    service = DeliveryService(ctx)
    try:
        await service.process(body, redelivered=(msg.dequeue_count or 1) > 1)
    except Exception as error:
        # The host retries; after the last try it moves the message to the poison queue,
        # so record the failure now rather than leave the notification pending forever.
        if (msg.dequeue_count or 0) >= max_dequeue_count():
            await service.record_abandoned(
                body, f"delivery failed {msg.dequeue_count} times; moved to the poison queue: {type(error).__name__}"
            )
        raise
