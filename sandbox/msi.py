"""The App Service / Functions managed-identity endpoint (IDENTITY_ENDPOINT, api-version 2019-08-01)."""

from __future__ import annotations

import hmac

from aiohttp import web

from .config import KNOWN_RESOURCES
from .state import SandboxState, state_of

API_VERSION = "2019-08-01"


def _error(status: int, message: str) -> web.Response:
    # App Service answers errors as {"statusCode": ..., "message": ...}; MSAL reads these two keys.
    return web.json_response({"statusCode": status, "message": message}, status=status)


async def token(request: web.Request) -> web.Response:
    state = state_of(request)
    response = _issue(request, state)
    state.stats.msi_requests["issued" if response.status == 200 else "rejected"] += 1
    return response


def _issue(request: web.Request, state: SandboxState) -> web.Response:
    config = state.config
    header = request.headers.get("X-IDENTITY-HEADER")
    if header is None:
        return _error(400, "The X-IDENTITY-HEADER header is missing.")
    if not hmac.compare_digest(header.encode(), config.identity_header.encode()):
        return _error(401, "The X-IDENTITY-HEADER header is not valid.")
    query = request.query
    if query.get("api-version") != API_VERSION:
        return _error(400, f"The api-version parameter must be {API_VERSION}.")
    resource = query.get("resource", "").removesuffix("/.default").rstrip("/")
    if not resource:
        return _error(400, "The resource parameter is missing.")
    if resource not in KNOWN_RESOURCES:
        return _error(400, f"AADSTS500011: The resource principal named {resource} was not found in the tenant.")
    for selector in ("client_id", "principal_id", "object_id", "mi_res_id"):
        requested = query.get(selector)
        if requested is not None and requested != config.managed_identity_client_id:
            return _error(400, "No Managed Identity found for specified ClientId/ResourceId/PrincipalId.")
    access_token, info = state.tokens.issue(
        resource, config.managed_identity_client_id, "managed_identity", config.token_lifetime
    )
    return web.json_response(
        {
            "access_token": access_token,
            "expires_on": str(int(info.expires_at)),
            "resource": query.get("resource"),
            "token_type": "Bearer",
            "client_id": config.managed_identity_client_id,
        }
    )
