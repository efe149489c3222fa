"""HTTP: POST /api/notifications, GET /api/notifications/{id}, DELETE (cancel) a scheduled one.

- `/api/notifications[/{id}]`: backends, with a function key.
- `/api/me/notifications[/{id}]`: backends with an Entra ID app-only token carrying the backend
  app role (pushfuncs/auth.py), since the host tells our code nothing of keys on anonymous
  routes. The same requests and answers; a device's token is refused with 403.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import azure.functions as func

from pushfuncs.auth import signed_in_backend
from pushfuncs.context import get_context
from pushfuncs.errors import InvalidField, NotFound
from pushfuncs.http_responses import api_handler, json_response
from pushfuncs.services.cancelling import cancel_notification
from pushfuncs.services.sending import accept_notification, request_fingerprint
from pushfuncs.storage.notifications import summarize, targets_after
from pushfuncs.validation import parse_send_request, validate_id, validate_idempotency_key

bp = func.Blueprint()

# Per-target results in a status: a page of them, in installation id order.
DEFAULT_TARGETS = 100
MAX_TARGETS = 1000
_LIMIT = re.compile(r"[1-9][0-9]{0,3}")


KEY_ROUTE = "notifications"
TOKEN_ROUTE = "me/notifications"


@bp.function_name("send_notification")
@bp.route(route=KEY_ROUTE, methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def send_notification(req: func.HttpRequest) -> func.HttpResponse:
    return await _send(req, f"/api/{KEY_ROUTE}")


@bp.function_name("get_notification")
@bp.route(route=KEY_ROUTE + "/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def get_notification(req: func.HttpRequest) -> func.HttpResponse:
    return await _get(req)


@bp.function_name("cancel_notification")
@bp.route(route=KEY_ROUTE + "/{id}", methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def cancel_scheduled_notification(req: func.HttpRequest) -> func.HttpResponse:
    return await _cancel(req)


@bp.function_name("send_my_notification")
@bp.route(route=TOKEN_ROUTE, methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api_handler
@signed_in_backend
async def send_my_notification(req: func.HttpRequest) -> func.HttpResponse:
    return await _send(req, f"/api/{TOKEN_ROUTE}")


@bp.function_name("get_my_notification")
@bp.route(route=TOKEN_ROUTE + "/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api_handler
@signed_in_backend
async def get_my_notification(req: func.HttpRequest) -> func.HttpResponse:
    return await _get(req)


@bp.function_name("cancel_my_notification")
@bp.route(route=TOKEN_ROUTE + "/{id}", methods=["DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@api_handler
@signed_in_backend
async def cancel_my_scheduled_notification(req: func.HttpRequest) -> func.HttpResponse:
    return await _cancel(req)


async def _send(req: func.HttpRequest, status_path: str) -> func.HttpResponse:
    body = req.get_body()
    request = parse_send_request(body)
    key = validate_idempotency_key(req.headers.get("Idempotency-Key"))
    ctx = await get_context()
    accepted = await accept_notification(
        ctx, request, datetime.now(UTC), idempotency_key=key, fingerprint=request_fingerprint(body)
    )
    location = f"{status_path}/{accepted['id']}"
    return json_response(202, {**accepted, "location": location}, headers={"Location": location})


async def _get(req: func.HttpRequest) -> func.HttpResponse:
    notification_id = validate_id(req.route_params.get("id"), "id")
    ctx = await get_context()
    after = _targets_after(req.params.get("continuationToken"))
    limit = _limit(req.params.get("limit"))
    record = await ctx.notifications.get(notification_id)
    if record is None:
        raise NotFound(f"notification {notification_id!r} is unknown", "NotificationNotFound")
    return json_response(200, summarize(record, datetime.now(UTC), limit, after))


async def _cancel(req: func.HttpRequest) -> func.HttpResponse:
    notification_id = validate_id(req.route_params.get("id"), "id")
    ctx = await get_context()
    return json_response(200, await cancel_notification(ctx.notifications, notification_id, datetime.now(UTC)))


def _targets_after(token: str | None) -> str | None:
    if token is None:
        return None
    after = targets_after(token) if len(token) <= 200 and token.isascii() else None
    if after is None:
        raise InvalidField("continuationToken", "is not a token this notification's status returned")
    return after


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_TARGETS
    if not _LIMIT.fullmatch(raw) or int(raw) > MAX_TARGETS:
        raise InvalidField("limit", f"must be an integer from 1 to {MAX_TARGETS}")
    return int(raw)
