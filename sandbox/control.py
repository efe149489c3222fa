"""Sandbox-only endpoints under /_sandbox: channels, inboxes, fault injection, tokens, stats."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from .channels import Channel, format_delivery
from .config import (
    API_APP_ID_URI,
    API_BACKEND_ROLE,
    API_CLIENT_ID,
    API_DEVICE_SCOPE,
    DEFAULT_CHANNEL_LIFETIME,
    DEVICE_CLIENT_ID,
    WNS_RESOURCE,
)
from .faults import FaultError, FaultMix
from .signing import TokenShape
from .state import state_of

_MAX_CHANNEL_LIFETIME = 10 * 365 * 24 * 3600


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _optional_json(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    text = await request.text()
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise web.HTTPBadRequest(text='{"error": "body is not valid JSON"}', content_type="application/json") from exc


def _channel(request: web.Request) -> Channel:
    channel = state_of(request).channels.get(request.match_info["channel_id"])
    if channel is None:
        raise web.HTTPNotFound(text='{"error": "unknown channel"}', content_type="application/json")
    return channel


def _channel_info(channel: Channel) -> dict[str, Any]:
    return channel.describe() | {
        "clientId": channel.client_id,
        "createdAt": channel.created_at,
        "expired": channel.is_expired(time.time()),
        "received": channel.received,
        "inboxSize": len(channel.inbox),
        "pendingFaults": channel.faults.pending(),
    }


async def info(request: web.Request) -> web.Response:
    state = state_of(request)
    url, tenant = state.public_url, state.config.tenant_id
    return web.json_response(
        {
            "url": url,
            "authority": url,
            "tokenEndpoint": f"{url}/{tenant}/oauth2/v2.0/token",
            "keyVaultUrl": url,
            "identityEndpoint": f"{url}/_sandbox/msi/token",
            "tenantId": tenant,
            "clientId": state.config.client_id,
            "managedIdentityClientId": state.config.managed_identity_client_id,
            "api": {
                "clientId": API_CLIENT_ID,
                "appIdUri": API_APP_ID_URI,
                "deviceScope": f"{API_APP_ID_URI}/{API_DEVICE_SCOPE}",
                "backendRole": API_BACKEND_ROLE,
                "deviceClientId": DEVICE_CLIENT_ID,
            },
        }
    )


async def create_channel(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await _optional_json(request) or {}
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    lifetime = body.get("expiresInSeconds", DEFAULT_CHANNEL_LIFETIME)
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int | float)
        or not 0 <= lifetime <= _MAX_CHANNEL_LIFETIME
    ):
        return _error(400, "expiresInSeconds must be a number of seconds from 0 to ten years")
    client_id = body.get("clientId", state.config.client_id)
    if not isinstance(client_id, str) or not client_id:
        return _error(400, "clientId must be a non-empty string")
    channel = state.channels.create(state.public_url, float(lifetime), client_id)
    state.stats.channels_created += 1
    return web.json_response(channel.describe(), status=201)


async def list_channels(request: web.Request) -> web.Response:
    state = state_of(request)
    return web.json_response([_channel_info(c) for c in state.channels.all()])


async def get_channel(request: web.Request) -> web.Response:
    return web.json_response(_channel_info(_channel(request)))


async def delete_channel(request: web.Request) -> web.Response:
    state_of(request).channels.delete(_channel(request).channel_id)
    return web.Response(status=204)


async def get_inbox(request: web.Request) -> web.Response:
    return web.json_response([format_delivery(d) for d in _channel(request).inbox])


async def clear_inbox(request: web.Request) -> web.Response:
    _channel(request).inbox.clear()
    return web.Response(status=204)


async def expire_channel(request: web.Request) -> web.Response:
    channel = _channel(request)
    channel.expires_at = min(channel.expires_at, time.time())
    return web.json_response(_channel_info(channel))


async def add_faults(request: web.Request) -> web.Response:
    channel = _channel(request)
    try:
        channel.faults.extend(await _optional_json(request))
    except FaultError as exc:
        return _error(400, str(exc))
    return web.json_response({"pending": channel.faults.pending()})


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response({"pending": _channel(request).faults.pending()})


async def clear_faults(request: web.Request) -> web.Response:
    _channel(request).faults.clear()
    return web.Response(status=204)


async def set_fault_mix(request: web.Request) -> web.Response:
    state = state_of(request)
    spec = await _optional_json(request) or {}
    if not isinstance(spec, dict):
        return _error(400, "the fault mix must be a JSON object")
    try:
        state.fault_mix = FaultMix(spec) if spec else None
    except FaultError as exc:
        return _error(400, str(exc))
    return web.json_response({"mix": spec})


async def get_fault_mix(request: web.Request) -> web.Response:
    mix = state_of(request).fault_mix
    return web.json_response({"mix": mix.spec if mix else {}})


async def revoke_tokens(request: web.Request) -> web.Response:
    return web.json_response({"revoked": state_of(request).tokens.revoke(WNS_RESOURCE)})


async def expire_tokens(request: web.Request) -> web.Response:
    return web.json_response({"expired": state_of(request).tokens.expire(WNS_RESOURCE)})


async def rotate_signing_key(request: web.Request) -> web.Response:
    """Sign API tokens with a new key from now on (the JWKS publishes it beside the previous one)."""
    return web.json_response({"kid": state_of(request).api_tokens.rotate()})


async def shape_next_token(request: web.Request) -> web.Response:
    """Change the next API token issued: expiresIn, notBeforeIn (seconds), audience, issuer, tenant,
    scope (the `scp` claim), roles."""
    body = await _optional_json(request) or {}
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    try:
        state_of(request).api_tokens.next_shape = TokenShape.from_json(body)
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response({"nextToken": body})


async def stats(request: web.Request) -> web.Response:
    state = state_of(request)
    return web.json_response(state.stats.snapshot(len(state.channels)))


async def reset(request: web.Request) -> web.Response:
    state_of(request).reset()
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/_sandbox", info)
    router.add_post("/_sandbox/channels", create_channel)
    router.add_get("/_sandbox/channels", list_channels)
    router.add_get("/_sandbox/channels/{channel_id}", get_channel)
    router.add_delete("/_sandbox/channels/{channel_id}", delete_channel)
    router.add_get("/_sandbox/channels/{channel_id}/inbox", get_inbox)
    router.add_delete("/_sandbox/channels/{channel_id}/inbox", clear_inbox)
    router.add_post("/_sandbox/channels/{channel_id}/expire", expire_channel)
    router.add_post("/_sandbox/channels/{channel_id}/faults", add_faults)
    router.add_get("/_sandbox/channels/{channel_id}/faults", get_faults)
    router.add_delete("/_sandbox/channels/{channel_id}/faults", clear_faults)
    router.add_post("/_sandbox/faults", set_fault_mix)
    router.add_get("/_sandbox/faults", get_fault_mix)
    router.add_post("/_sandbox/tokens/revoke", revoke_tokens)
    router.add_post("/_sandbox/tokens/expire", expire_tokens)
    router.add_post("/_sandbox/entra/keys/rotate", rotate_signing_key)
    router.add_post("/_sandbox/entra/next-token", shape_next_token)
    router.add_get("/_sandbox/stats", stats)
    router.add_post("/_sandbox/reset", reset)
