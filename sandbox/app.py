"""The aiohttp application: every route of the sandbox on one origin."""

from __future__ import annotations

from aiohttp import web

from . import control, entra, keyvault, msi, wns
from .state import STATE_KEY, SandboxState


def create_app(state: SandboxState) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state
    router = app.router
    control.add_routes(router)
    router.add_get("/_sandbox/msi/token", msi.token)
    keyvault.add_routes(router)
    # The channel URI is https://host:port/?token=...; every method reaches the handler so that
    # anything but POST gets WNS's 405 rather than aiohttp's.
    router.add_route("*", "/", wns.send)
    # Tenant routes last: their first segment is a wildcard.
    router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", entra.openid_configuration)
    router.add_get("/{tenant}/discovery/v2.0/keys", entra.jwks)
    router.add_post("/{tenant}/oauth2/v2.0/token", entra.token)
    return app
