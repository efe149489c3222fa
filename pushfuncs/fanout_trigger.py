"""Queue trigger: expand user, tag, expression and id-list targets into delivery batches."""

from __future__ import annotations

import azure.functions as func

from pushfuncs.context import get_context
from pushfuncs.services.fanout import FanoutService

bp = func.Blueprint()


@bp.function_name("expand_notification_targets")
@bp.queue_trigger(arg_name="msg", queue_name="%FANOUT_QUEUE%", connection="AzureWebJobsStorage")
async def expand_notification_targets(msg: func.QueueMessage) -> None:
    ctx = await get_context()
    await FanoutService(ctx).process(msg.get_body())
