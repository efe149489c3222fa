"""Queue trigger: expand user, tag, expression, broadcast and id-list targets into delivery batches."""

from __future__ import annotations

import azure.functions as func

from pushfuncs.context import get_context
from pushfuncs.host_config import max_dequeue_count
from pushfuncs.services.fanout import FanoutService

bp = func.Blueprint()


@bp.function_name("expand_notification_targets")
@bp.queue_trigger(arg_name="msg", queue_name="%FANOUT_QUEUE%", connection="AzureWebJobsStorage")
async def expand_notification_targets(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    ctx = await get_context()
    service = FanoutService(ctx)
    try:
        await service.process(body)
    except Exception as error:
        # After the last try the host moves the message to the poison queue: record the failure
        # now rather than leave the notification accepted forever.
        if (msg.dequeue_count or 0) >= max_dequeue_count():
            await service.record_abandoned(
                body, f"fan-out failed {msg.dequeue_count} times; moved to the poison queue: {type(error).__name__}"
            )
        raise
