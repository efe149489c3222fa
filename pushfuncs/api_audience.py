"""HTTP, backends only (function key): list the installations of a user or a tag, page by page,
and count who a send would reach. Channel URIs are shown: only backends reach these routes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import azure.functions as func

from pushfuncs.context import get_context
from pushfuncs.errors import ApiError, InvalidField
from pushfuncs.http_responses import api_handler, json_response
from pushfuncs.services.audience import DEFAULT_PAGE, MAX_PAGE, count_audience, list_installations
from pushfuncs.storage.index import IndexRow, tag_partitions, user_partition
from pushfuncs.validation import parse_target

bp = func.Blueprint()

_LIMIT = re.compile(r"[1-9][0-9]{0,3}")


@bp.function_name("list_installations")
@bp.route(route="installations", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def list_installations_route(req: func.HttpRequest) -> func.HttpResponse:
    target = _target(req, ("userId", "tag"))
    partitions = [user_partition(str(target["userId"]))] if "userId" in target else tag_partitions(str(target["tag"]))
    ctx = await get_context()
    rows, token = await list_installations(
        ctx.index, partitions, req.params.get("continuationToken"), _limit(req), datetime.now(UTC)
    )
    user = target.get("userId")
    return json_response(200, {"installations": [_listed(row, user) for row in rows], "continuationToken": token})


@bp.function_name("count_audience")
@bp.route(route="audience/count", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def count_audience_route(req: func.HttpRequest) -> func.HttpResponse:
    target = _target(req, ("tag", "tagExpression", "userId", "all"))
    ctx = await get_context()
    count, token = await count_audience(ctx.index, target, req.params.get("continuationToken"), datetime.now(UTC))
    return json_response(200, {"count": count, "complete": token is None, "continuationToken": token})


def _target(req: func.HttpRequest, names: tuple[str, ...]) -> dict[str, object]:
    """Exactly one of the query parameters `names`, validated as the send target it names."""
    given = [name for name in names if req.params.get(name) is not None]
    if len(given) != 1:
        raise InvalidField(names[0], f"give exactly one of the query parameters {', '.join(names)}", "MissingField")
    name = given[0]
    value: object = req.params[name]
    if name == "all":
        if value != "true":
            raise InvalidField("all", "must be true (everyone)")
        value = True
    try:
        return parse_target({name: value}).to_dict()
    except ApiError as error:
        field = (error.field or "").removeprefix("target.")
        raise InvalidField(field, error.message.removeprefix("target."), error.code) from None


def _limit(req: func.HttpRequest) -> int:
    raw = req.params.get("limit")
    if raw is None:
        return DEFAULT_PAGE
    if not _LIMIT.fullmatch(raw) or int(raw) > MAX_PAGE:
        raise InvalidField("limit", f"must be an integer from 1 to {MAX_PAGE}")
    return int(raw)


def _listed(row: IndexRow, user_id: object) -> dict[str, object]:
    listed: dict[str, object] = {
        "installationId": row.installation_id,
        "channelUri": row.channel_uri,
        "tags": sorted(row.tags),
        "templates": sorted(row.templates),
        "expiresAt": row.expires_at.isoformat().replace("+00:00", "Z"),
    }
    if user_id is not None:
        listed["userId"] = user_id
    return listed
