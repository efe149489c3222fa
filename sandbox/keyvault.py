"""The Key Vault secrets data plane, as far as azure-keyvault-secrets uses it, with challenge auth."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .config import VAULT_RESOURCE
from .state import SandboxState, state_of
from .tokens import TokenCheck
from .vault_store import Secret, SecretVersion, bundle, deleted_bundle, list_item

Handler = Callable[[web.Request], Awaitable[web.Response]]

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_MAX_VALUE_CHARS = 25 * 1024
_MAX_TAGS = 15
_NOT_FOUND_HINT = (
    " was not found in this key vault. If you recently deleted this secret you may be able to recover it using "
    "the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)


class VaultError(Exception):
    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return web.json_response({"error": error}, status=self.status, headers=headers)


def guarded(handler: Handler) -> Handler:
    """Apply Key Vault's bearer challenge and api-version check before `handler`."""

    async def wrapper(request: web.Request) -> web.Response:
        state = state_of(request)
        try:
            _authorize(request, state)
            if "api-version" not in request.query:
                raise VaultError(400, "BadParameter", "The 'api-version' query parameter is missing.")
            return await handler(request)
        except VaultError as exc:
            headers = {"WWW-Authenticate": _challenge(state)} if exc.status == 401 else None
            return exc.response(headers)

    return wrapper


def _challenge(state: SandboxState) -> str:
    return f'Bearer authorization="{state.public_url}/{state.config.tenant_id}", resource="{VAULT_RESOURCE}"'


def _authorize(request: web.Request, state: SandboxState) -> None:
    header = request.headers.get("Authorization")
    if header is None:
        state.stats.key_vault["challenges"] += 1
        raise VaultError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
    scheme, _, token = header.partition(" ")
    check = TokenCheck.UNKNOWN
    if scheme.lower() == "bearer" and token.strip():
        check, _info = state.tokens.check(token.strip(), VAULT_RESOURCE)
    if check is not TokenCheck.VALID:
        state.stats.key_vault["rejected"] += 1
        reason = "Token is expired." if check is TokenCheck.EXPIRED else "Invalid bearer token."
        raise VaultError(
            401, "Unauthorized", f"{reason} The token was not issued for this vault or is no longer valid."
        )


def _base(request: web.Request) -> str:
    return f"https://{request.host}"


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not _NAME.match(name):
        raise VaultError(400, "BadParameter", f"The request URI contains an invalid name: {name}")
    return name


def _live(state: SandboxState, name: str, version: str | None = None) -> tuple[Secret, SecretVersion]:
    secret = state.secrets.find(name)
    found = None if secret is None else (secret.latest if not version else secret.version(version))
    if secret is None or found is None:
        label = name if not version else f"{name}/{version}"
        raise VaultError(404, "SecretNotFound", f"A secret with (name/id) {label}{_NOT_FOUND_HINT}")
    return secret, found


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise VaultError(400, "BadParameter", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise VaultError(400, "BadParameter", "The request body must be a JSON object.")
    return body


def _timestamp(attributes: dict[str, Any], key: str) -> int | None:
    value = attributes.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VaultError(400, "BadParameter", f"Property attributes.{key} must be a Unix time in seconds.")
    return int(value)


def _properties(body: dict[str, Any]) -> dict[str, Any]:
    """Validated optional properties shared by PUT and PATCH: contentType, tags, attributes."""
    found: dict[str, Any] = {}
    if "contentType" in body:
        content_type = body["contentType"]
        if content_type is not None and (not isinstance(content_type, str) or len(content_type) > 255):
            raise VaultError(400, "BadParameter", "Property contentType must be a string of at most 255 characters.")
        found["content_type"] = content_type
    if "tags" in body:
        tags = body["tags"]
        if tags is not None and (
            not isinstance(tags, dict)
            or len(tags) > _MAX_TAGS
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
        ):
            raise VaultError(400, "BadParameter", f"Property tags must map strings to strings, at most {_MAX_TAGS}.")
        found["tags"] = tags
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise VaultError(400, "BadParameter", "Property attributes must be an object.")
    if "enabled" in attributes:
        if not isinstance(attributes["enabled"], bool):
            raise VaultError(400, "BadParameter", "Property attributes.enabled must be a boolean.")
        found["enabled"] = attributes["enabled"]
    for key, field in (("nbf", "not_before"), ("exp", "expires")):
        if key in attributes:
            found[field] = _timestamp(attributes, key)
    return found


@guarded
async def set_secret(request: web.Request) -> web.Response:
    state = state_of(request)
    name = _name(request)
    if state.secrets.is_deleted(name):
        raise VaultError(
            409,
            "Conflict",
            f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
            "in this state, the secret can only be recovered or purged.",
            inner="ObjectIsDeletedButRecoverable",
        )
    body = await _json_object(request)
    value = body.get("value")
    if not isinstance(value, str):
        raise VaultError(400, "BadParameter", "Property value is required and must be a string.")
    if len(value) > _MAX_VALUE_CHARS:
        raise VaultError(400, "BadParameter", "The secret value exceeds the 25 KB size limit.")
    props = _properties(body)
    secret, version = state.secrets.add_version(
        name,
        value,
        props.get("content_type"),
        props.get("tags"),
        props.get("enabled", True),
        props.get("not_before"),
        props.get("expires"),
    )
    state.stats.key_vault["writes"] += 1
    return web.json_response(bundle(_base(request), secret, version, with_value=True))


@guarded
async def get_secret(request: web.Request) -> web.Response:
    state = state_of(request)
    secret, version = _live(state, _name(request), request.match_info.get("version"))
    state.stats.key_vault["reads"] += 1
    if not version.enabled:
        raise VaultError(403, "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled")
    return web.json_response(bundle(_base(request), secret, version, with_value=True))


@guarded
async def update_secret(request: web.Request) -> web.Response:
    state = state_of(request)
    secret, version = _live(state, _name(request), request.match_info.get("version"))
    props = _properties(await _json_object(request))
    for field, value in props.items():
        setattr(version, field, value)
    version.updated = int(time.time())
    state.stats.key_vault["writes"] += 1
    return web.json_response(bundle(_base(request), secret, version, with_value=False))


@guarded
async def list_secrets(request: web.Request) -> web.Response:
    state = state_of(request)
    state.stats.key_vault["reads"] += 1
    base = _base(request)
    items = [list_item(base, s, s.latest, versioned=False) for s in state.secrets.live()]
    return web.json_response({"value": items, "nextLink": None})


@guarded
async def list_versions(request: web.Request) -> web.Response:
    state = state_of(request)
    secret, _latest = _live(state, _name(request))
    state.stats.key_vault["reads"] += 1
    base = _base(request)
    return web.json_response(
        {"value": [list_item(base, secret, v, versioned=True) for v in secret.versions], "nextLink": None}
    )


@guarded
async def delete_secret(request: web.Request) -> web.Response:
    state = state_of(request)
    secret, _latest = _live(state, _name(request))
    secret.deleted_at = int(time.time())
    state.stats.key_vault["deletes"] += 1
    return web.json_response(deleted_bundle(_base(request), secret))


def _deleted(state: SandboxState, name: str) -> Secret:
    secret = state.secrets.find(name, deleted=True)
    if secret is None:
        raise VaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
    return secret


@guarded
async def get_deleted_secret(request: web.Request) -> web.Response:
    state = state_of(request)
    state.stats.key_vault["reads"] += 1
    return web.json_response(deleted_bundle(_base(request), _deleted(state, _name(request))))


@guarded
async def list_deleted_secrets(request: web.Request) -> web.Response:
    state = state_of(request)
    state.stats.key_vault["reads"] += 1
    items = [deleted_bundle(_base(request), s) for s in state.secrets.deleted()]
    for item in items:
        item["id"] = item["id"].rsplit("/", 1)[0]
    return web.json_response({"value": items, "nextLink": None})


@guarded
async def purge_deleted_secret(request: web.Request) -> web.Response:
    state = state_of(request)
    secret = _deleted(state, _name(request))
    state.secrets.purge(secret.name)
    state.stats.key_vault["deletes"] += 1
    return web.Response(status=204)


@guarded
async def recover_deleted_secret(request: web.Request) -> web.Response:
    state = state_of(request)
    secret = _deleted(state, _name(request))
    secret.deleted_at = None
    state.stats.key_vault["writes"] += 1
    return web.json_response(bundle(_base(request), secret, secret.latest, with_value=False))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/secrets", list_secrets)
    router.add_get("/secrets/{name}/versions", list_versions)
    router.add_put("/secrets/{name}", set_secret)
    router.add_delete("/secrets/{name}", delete_secret)
    router.add_get("/secrets/{name}", get_secret, allow_head=False)
    router.add_get("/secrets/{name}/", get_secret, allow_head=False)
    router.add_patch("/secrets/{name}/", update_secret)
    router.add_get("/secrets/{name}/{version}", get_secret, allow_head=False)
    router.add_patch("/secrets/{name}/{version}", update_secret)
    router.add_get("/deletedsecrets", list_deleted_secrets)
    router.add_get("/deletedsecrets/{name}", get_deleted_secret, allow_head=False)
    router.add_delete("/deletedsecrets/{name}", purge_deleted_secret)
    router.add_post("/deletedsecrets/{name}/recover", recover_deleted_secret)
