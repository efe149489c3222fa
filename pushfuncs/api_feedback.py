"""HTTP, backends only: GET /api/removed-channels, the channels WNS expired or refused (404/410)
that delivery removed, with the answer and the time, for as long as notification status is kept."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import azure.functions as func

from pushfuncs.config import get_settings
from pushfuncs.context import get_context
from pushfuncs.errors import InvalidField
from pushfuncs.http_responses import api_handler, json_response
from pushfuncs.services.feedback import removed_channels
from pushfuncs.storage.removed_channels import RemovedChannelFeed
from pushfuncs.validation import parse_rfc3339

bp = func.Blueprint()

DEFAULT_PAGE = 100
MAX_PAGE = 1000
_LIMIT = re.compile(r"[1-9][0-9]{0,3}")


@bp.function_name("list_removed_channels")
@bp.route(route="removed-channels", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def list_removed_channels(req: func.HttpRequest) -> func.HttpResponse:
    now = datetime.now(UTC)
    oldest = now - get_settings().notification_retention
    raw_since = req.params.get("since")
    since = now - timedelta(days=1) if raw_since is None else parse_rfc3339(raw_since, "since")
    if since > now:
        raise InvalidField("since", "is in the future")
    raw_limit = req.params.get("limit", str(DEFAULT_PAGE))
    if not _LIMIT.fullmatch(raw_limit) or int(raw_limit) > MAX_PAGE:
        raise InvalidField("limit", f"must be an integer from 1 to {MAX_PAGE}")
    ctx = await get_context()
    feed = RemovedChannelFeed(ctx.notifications.table)
    # Older rows are gone (retention): start where some may be left.
    rows, token = await removed_channels(
        feed, max(since, oldest), now, req.params.get("continuationToken"), int(raw_limit)
    )
    return json_response(200, {"removedChannels": [row.to_api() for row in rows], "continuationToken": token})
