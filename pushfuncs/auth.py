"""Who is calling, decided once at the HTTP edge: `@signed_in` handlers get a verified `Caller`.

Backends call the key-protected routes: the Functions host checks the function key before our
code runs, and the host does not tell our code which key (if any) came with a request on an
anonymous route. So devices, which cannot keep a key, get routes of their own
(`/api/me/installations/{id}`, `auth_level=ANONYMOUS`) where our code requires an Entra ID
bearer token for our API (pushfuncs/bearer_tokens.py): a user's token makes the caller that
device's user; an app-only token with the backend app role makes it a backend. Backends that
sign in rather than hold a key send and read statuses on `/api/me/notifications[/{id}]`
(`@signed_in_backend`), where a device's token is refused with 403.

These routes are always registered and answer 404 while `DEVICE_SIGN_IN_ENABLED` is off:
functions are indexed once when the host starts, and an app setting read at import time would
make the set of functions (and the OpenAPI document) depend on the environment, and a bad
value would fail the import and so load zero functions. Answering 404 exposes nothing, and
turning the setting on takes effect at the next restart as any setting change does.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable

import azure.functions as func

from pushfuncs.bearer_tokens import (
    BACKEND_ROLE,
    BearerTokenVerifier,
    Caller,
    MissingPermission,
    TokenRejected,
)
from pushfuncs.config import ConfigurationError, Settings, get_settings
from pushfuncs.errors import ApiError, NotFound
from pushfuncs.signing_keys import SigningKeys, SigningKeysUnavailable

logger = logging.getLogger(__name__)

SignedInHandler = Callable[[func.HttpRequest, Caller], Awaitable[func.HttpResponse]]
Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


class Unauthorized(ApiError):
    """401: no usable bearer token; says why, never echoes the token."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(401, "Unauthorized", message)
        # RFC 6750 section 3: no error code when the request carried no token at all.
        challenge = 'Bearer realm="pushfuncs"'
        if not missing:
            challenge += f', error="invalid_token", error_description="{message}"'
        self.headers = {"WWW-Authenticate": challenge}


class InsufficientScope(ApiError):
    """403: a valid token for our API that grants neither the device scope nor the backend role."""

    def __init__(self, permission: str) -> None:
        super().__init__(403, "InsufficientScope", f"the token does not grant {permission}")
        challenge = f'Bearer realm="pushfuncs", error="insufficient_scope", scope="{permission}"'
        self.headers = {"WWW-Authenticate": challenge}


class SignInUnavailable(ApiError):
    def __init__(self) -> None:
        super().__init__(503, "SignInUnavailable", "the identity provider's signing keys are unavailable; retry later")


def bearer_token(req: func.HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (req.headers.get("Authorization") or "").strip().partition(" ")
    token = token.strip()
    # A JWT is ASCII; anything else (a lone surrogate included) is no token at all.
    return token if scheme.lower() == "bearer" and token and token.isascii() else None


_verifiers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Settings, BearerTokenVerifier]] = (
    weakref.WeakKeyDictionary()
)


def _verifier(settings: Settings) -> BearerTokenVerifier:
    """One verifier (and key cache) per event loop and settings."""
    loop = asyncio.get_running_loop()
    cached = _verifiers.get(loop)
    if cached is not None and cached[0] is settings:
        return cached[1]
    if not settings.api_audiences or not settings.api_allowed_tenants:
        raise ConfigurationError("DEVICE_SIGN_IN_ENABLED needs API_AUDIENCES and API_ALLOWED_TENANTS")
    keys = SigningKeys(settings.api_authority_host)
    verifier = BearerTokenVerifier(
        keys, settings.api_authority_host, settings.api_audiences, settings.api_allowed_tenants
    )
    _verifiers[loop] = (settings, verifier)
    return verifier


async def authenticate(req: func.HttpRequest, backend_only: bool = False) -> Caller:
    """The caller a request's bearer token proves; raises the API error to answer otherwise.

    With `backend_only`, any caller but a backend (a device, or a token without the device
    scope) is refused with 403 naming the backend role, the one permission that would do.
    """
    settings = get_settings()
    if not settings.device_sign_in_enabled:
        raise NotFound("not found")
    verifier = _verifier(settings)
    token = bearer_token(req)
    if token is None:
        raise Unauthorized("an Entra ID access token for this API is required", missing=True)
    try:
        caller = await verifier.verify(token)
    except TokenRejected as error:
        logger.info("bearer token refused: %s", error.reason)
        raise Unauthorized(error.reason) from None
    except MissingPermission as error:
        raise InsufficientScope(BACKEND_ROLE if backend_only else str(error)) from None
    except SigningKeysUnavailable:
        raise SignInUnavailable() from None
    if backend_only and caller.is_device:
        raise InsufficientScope(BACKEND_ROLE)
    return caller


def signed_in(handler: SignedInHandler) -> Handler:
    """Call `handler(req, caller)` with the verified caller, or answer 401/403/404."""

    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        return await handler(req, await authenticate(req))

    return _named_like(wrapper, handler)


def signed_in_backend(handler: Handler) -> Handler:
    """Call `handler(req)` for a backend's app-only token; answer 401/403/404 otherwise."""

    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        await authenticate(req, backend_only=True)
        return await handler(req)

    return _named_like(wrapper, handler)


def _named_like(wrapper: Handler, handler: Callable[..., object]) -> Handler:
    # Not functools.wraps: the host reads the wrapper's signature (one `req` binding), and
    # `__wrapped__` would point it at the handler's own parameters.
    wrapper.__name__, wrapper.__qualname__ = handler.__name__, handler.__qualname__
    wrapper.__doc__, wrapper.__module__ = handler.__doc__, handler.__module__
    return wrapper
