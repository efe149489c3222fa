"""HTTP: PUT/PATCH/GET/DELETE an installation, for backends (function key) and for signed-in devices.

- `/api/installations/{installationId}`: backends, with a function key; any installation.
- `/api/me/installations/{installationId}`: an Entra ID bearer token (pushfuncs/auth.py). A
  device's user creates, reads, changes and deletes only installations it owns; their `userId`
  is the user's object id from the token, whatever the body says. Someone else's installation
  answers as a missing one (GET 404, DELETE 204), except a PUT of an id someone else holds,
  which answers 403 `InstallationNotOwned`: the id cannot be created, so its being taken cannot
  be hidden. An app-only token with the backend role has a backend's access.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import azure.functions as func

from pushfuncs.auth import signed_in
from pushfuncs.bearer_tokens import KEY_HOLDER, Caller
from pushfuncs.config import get_settings
from pushfuncs.context import get_context
from pushfuncs.errors import NotFound
from pushfuncs.http_responses import api_handler, json_response
from pushfuncs.services.patching import parse_patch_body, patch_installation
from pushfuncs.services.registration import register_installation, remove_installation
from pushfuncs.validation import parse_installation_request, validate_id

bp = func.Blueprint()

ROUTE = "installations/{installationId}"
DEVICE_ROUTE = "me/installations/{installationId}"


@bp.function_name("put_installation")
@bp.route(route=ROUTE, methods=["PUT"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def put_installation(req: func.HttpRequest) -> func.HttpResponse:
    return await _put(req, KEY_HOLDER)


@bp.function_name("get_installation")
@bp.route(route=ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def get_installation(req: func.HttpRequest) -> func.HttpResponse:
    return await _get(req, KEY_HOLDER)


@bp.function_name("delete_installation")
@bp.route(route=ROUTE, methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def delete_installation(req: func.HttpRequest) -> func.HttpResponse:
    return await _delete(req, KEY_HOLDER)


@bp.function_name("patch_installation")
@bp.route(route=ROUTE, methods=["PATCH"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def patch_installation_route(req: func.HttpRequest) -> func.HttpResponse:
    return await _patch(req, KEY_HOLDER)


@bp.function_name("put_my_installation")
@bp.route(route=DEVICE_ROUTE, methods=["PUT"], auth_level=func.AuthLevel.ANONYMOUS)
@api_handler
@signed_in
async def put_my_installation(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await _put(req, caller)


@bp.function_name("patch_my_installation")
@bp.route(route=DEVICE_ROUTE, methods=["PATCH"], auth_level=func.AuthLevel.ANONYMOUS)
@api_handler
@signed_in
async def patch_my_installation(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await _patch(req, caller)


@bp.function_name("get_my_installation")
@bp.route(route=DEVICE_ROUTE, methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api_handler
@signed_in
async def get_my_installation(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await _get(req, caller)


@bp.function_name("delete_my_installation")
@bp.route(route=DEVICE_ROUTE, methods=["DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@api_handler
@signed_in
async def delete_my_installation(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await _delete(req, caller)


async def _put(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    installation_id = validate_id(req.route_params.get("installationId"), "installationId")
    request = parse_installation_request(req.get_body(), get_settings().allowed_hosts, datetime.now(UTC))
    if caller.is_device:
        request = replace(request, user_id=caller.user_id)
    ctx = await get_context()
    installation, created = await register_installation(
        ctx.installations, ctx.index, installation_id, request, datetime.now(UTC), owner=caller.owner
    )
    return json_response(201 if created else 200, installation.to_api())


async def _patch(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    installation_id = validate_id(req.route_params.get("installationId"), "installationId")
    operations = parse_patch_body(req.get_body())
    ctx = await get_context()
    installation = await patch_installation(
        ctx.installations,
        ctx.index,
        installation_id,
        operations,
        get_settings().allowed_hosts,
        datetime.now(UTC),
        owner=caller.owner,
        device_user_id=caller.user_id if caller.is_device else None,
    )
    return json_response(200, installation.to_api())


async def _get(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    installation_id = validate_id(req.route_params.get("installationId"), "installationId")
    ctx = await get_context()
    installation = await ctx.installations.get(installation_id)
    # An expired channel is gone for every send path, so GET says so too (the sweep deletes it later).
    expired = installation is not None and not installation.is_live(datetime.now(UTC))
    if installation is None or expired or (caller.is_device and installation.owner != caller.owner):
        raise NotFound(
            f"installation {installation_id!r} is not registered or its channel expired", "InstallationNotFound"
        )
    return json_response(200, installation.to_api())


async def _delete(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    installation_id = validate_id(req.route_params.get("installationId"), "installationId")
    ctx = await get_context()
    await remove_installation(ctx.installations, ctx.index, installation_id, owner=caller.owner)
    return func.HttpResponse(status_code=204)
