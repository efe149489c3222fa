"""HTTP: PUT/GET/DELETE /api/installations/{installationId}."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func

from pushfuncs.config import get_settings
from pushfuncs.context import get_context
from pushfuncs.errors import NotFound
from pushfuncs.http_responses import api_handler, json_response
from pushfuncs.services.registration import register_installation, remove_installation
from pushfuncs.validation import parse_installation_request, validate_id

bp = func.Blueprint()

ROUTE = "installations/{installationId}"


@bp.function_name("put_installation")
@bp.route(route=ROUTE, methods=["PUT"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def put_installation(req: func.HttpRequest) -> func.HttpResponse:
    installation_id = validate_id(req.route_params.get("installationId"), "installationId")
    request = parse_installation_request(req.get_body(), get_settings().allowed_hosts, datetime.now(UTC))
    ctx = await get_context()
    installation, created = await register_installation(
        ctx.installations, ctx.index, installation_id, request, datetime.now(UTC)
    )
    return json_response(201 if created else 200, installation.to_api())


@bp.function_name("get_installation")
@bp.route(route=ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def get_installation(req: func.HttpRequest) -> func.HttpResponse:
    installation_id = validate_id(req.route_params.get("installationId"), "installationId")
    ctx = await get_context()
    installation = await ctx.installations.get(installation_id)
    if installation is None:
        raise NotFound(f"installation {installation_id!r} is not registered", "InstallationNotFound")
    return json_response(200, installation.to_api())


@bp.function_name("delete_installation")
@bp.route(route=ROUTE, methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@api_handler
async def delete_installation(req: func.HttpRequest) -> func.HttpResponse:
    installation_id = validate_id(req.route_params.get("installationId"), "installationId")
    ctx = await get_context()
    await remove_installation(ctx.installations, ctx.index, installation_id)
    return func.HttpResponse(status_code=204)
