"""HTTP triggers: an aiohttp server that routes, authorizes and invokes like the Functions host.

Routes are ASP.NET templates under the host.json route prefix, tried most specific first. A
path that matches no route, or matches only with another method, is a 404 with an empty body
(the host's routing answers so; pass method_not_allowed_status=405 for a 405 with `Allow`).
A missing or wrong key is a 401 with an empty body; an unhandled exception a 500.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web
from multidict import CIMultiDict

from devhost.functions import FunctionLoadError, FunctionSpec
from devhost.invocation import Invoker
from devhost.keys import HostKeys, presented_key
from devhost.route_rules import effective_route
from devhost.routes import RouteTemplate, split_path

log = logging.getLogger("devhost")

# The Functions host's default request body limit.
DEFAULT_MAX_BODY = 100 * 1024 * 1024
ALL_METHODS = ("GET", "POST", "DELETE", "HEAD", "PATCH", "PUT", "OPTIONS")
# aiohttp computes these itself; a stale value copied from a function would corrupt the reply.
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection"}


@dataclass(frozen=True)
class HttpRoute:
    spec: FunctionSpec
    template: RouteTemplate
    # Empty: every method.
    methods: frozenset[str]
    auth_level: str

    @property
    def allowed_methods(self) -> Sequence[str]:
        return sorted(self.methods) if self.methods else ALL_METHODS


def build_route(spec: FunctionSpec, route_prefix: str) -> HttpRoute:
    """The route of one HTTP-triggered function; FunctionLoadError if its template is invalid."""
    path = effective_route(spec.name, spec.trigger)
    full = "/".join(part for part in (route_prefix, path.removeprefix("~").strip("/")) if part)
    try:
        template = RouteTemplate.parse(full)
    except ValueError as error:
        raise FunctionLoadError(str(error)) from None
    methods = frozenset(str(m).upper() for m in spec.trigger.get("methods") or ())
    auth_level = str(spec.trigger.get("authLevel") or "function").lower()
    return HttpRoute(spec, template, methods, auth_level)


def order_routes(routes: Sequence[HttpRoute]) -> list[HttpRoute]:
    """Most specific first, as ASP.NET routing's precedence orders them."""
    return sorted(routes, key=lambda r: (r.template.precedence, r.template.template.lower()))


def _joined(items: Any) -> dict[str, str]:
    # The host hands workers one string per name, repeated values joined with ",".
    values: dict[str, list[str]] = {}
    for name, value in items:
        values.setdefault(name, []).append(value)
    return {name: ",".join(parts) for name, parts in values.items()}


def to_web_response(value: Any) -> web.Response:
    """Convert what a function returned (func.HttpResponse or str) to an aiohttp response."""
    if isinstance(value, str):
        return web.Response(status=200, body=value.encode("utf-8"), content_type="text/plain", charset="utf-8")
    if not isinstance(value, func.HttpResponse):
        raise TypeError(f"an HTTP function must return func.HttpResponse or str, not {type(value).__name__}")
    headers: CIMultiDict[str] = CIMultiDict()
    for name, header in value.headers.items():
        if name.lower() not in _HOP_BY_HOP:
            headers.add(name, header)
    if "content-type" not in headers:
        mimetype = value.mimetype
        headers["Content-Type"] = f"{mimetype}; charset={value.charset}" if mimetype.startswith("text/") else mimetype
    return web.Response(status=value.status_code, body=value.get_body() or b"", headers=headers)


class HttpFrontend:
    """The HTTP side of the host."""

    def __init__(
        self,
        routes: Sequence[HttpRoute],
        keys: HostKeys,
        invoker: Invoker,
        *,
        max_body_size: int = DEFAULT_MAX_BODY,
        method_not_allowed_status: int = 404,
    ) -> None:
        self.routes = order_routes(routes)
        self._keys = keys
        self._invoker = invoker
        self._max_body_size = max_body_size
        self._method_not_allowed_status = method_not_allowed_status
        self._runner: web.AppRunner | None = None

    async def start(self, bind: str, port: int) -> int:
        """Listen on `bind:port` (0: a free port); returns the port."""
        application = web.Application(client_max_size=self._max_body_size)
        application.router.add_route("*", "/{tail:.*}", self.handle)
        # No access log: request lines carry `code=` keys in their query strings.
        self._runner = web.AppRunner(application, access_log=None, handle_signals=False, shutdown_timeout=10.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError:
            sock.close()
            await self._runner.cleanup()
            raise
        site = web.SockSite(self._runner, sock)
        await site.start()
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        segments = split_path(request.rel_url.raw_path)
        if segments is None:
            return web.Response(status=404)
        other_methods: set[str] = set()
        for route in self.routes:
            values = route.template.match(segments)
            if values is None:
                continue
            if route.methods and request.method not in route.methods:
                other_methods.update(route.methods)
                continue
            return await self._dispatch(route, values, request)
        if other_methods and self._method_not_allowed_status == 405:
            return web.Response(status=405, headers={"Allow": ", ".join(sorted(other_methods))})
        if not segments and request.method in ("GET", "HEAD") and not other_methods:
            return web.Response(text="The local Functions host is running.\n")
        return web.Response(status=404)

    async def _dispatch(
        self, route: HttpRoute, route_values: dict[str, str], request: web.Request
    ) -> web.StreamResponse:
        key = presented_key(request.headers, request.query)
        if not self._keys.is_authorized(route.auth_level, route.spec.name, key):
            return web.Response(status=401)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413)
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=_joined((k.lower(), v) for k, v in request.headers.items()),
            params=_joined(request.query.items()),
            route_params=route_values,
            body=body,
        )
        result = await self._invoker.invoke(route.spec, http_request)
        if not result.succeeded:
            return web.Response(status=500)
        try:
            return to_web_response(result.http_response)
        except TypeError as error:
            log.error("Functions.%s (Id=%s): %s", route.spec.name, result.invocation_id, error)
            return web.Response(status=500)
