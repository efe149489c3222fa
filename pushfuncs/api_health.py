"""HTTP: GET /api/health (anonymous), GET /api/metrics (function key), POST /api/sending/resume (master key)."""

from __future__ import annotations

import asyncio
import logging

import azure.functions as func

from pushfuncs.context import get_context
from pushfuncs.http_responses import json_response
from pushfuncs.metrics import metrics

logger = logging.getLogger(__name__)
bp = func.Blueprint()

HEALTH_TIMEOUT_SECONDS = 5


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    try:
        ctx = await asyncio.wait_for(get_context(), HEALTH_TIMEOUT_SECONDS)
        await asyncio.wait_for(ctx.installations.ping(), HEALTH_TIMEOUT_SECONDS)
    except Exception as error:
        logger.warning("health check: storage unreachable (%s)", type(error).__name__)
        return json_response(503, {"status": "unhealthy", "storage": "unreachable"})
    return json_response(200, {"status": "healthy", "storage": "reachable"})


@bp.function_name("get_metrics")
@bp.route(route="metrics", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def get_metrics(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(200, {"counters": metrics.snapshot()})


@bp.function_name("resume_sending")
# Not under `admin/`: the Functions host reserves routes beginning with `admin` or `runtime`.
@bp.route(route="sending/resume", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
async def resume_sending(req: func.HttpRequest) -> func.HttpResponse:
    """After WNS blocked the sending domain and the cause is fixed: allow sending again."""
    ctx = await get_context()
    await ctx.sending.resume()
    logger.warning("sending resumed by an administrator")
    return json_response(200, {"sending": "resumed"})
