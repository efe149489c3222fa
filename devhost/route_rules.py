"""The Functions host's load-time rules for HTTP routes (ScriptHost.ValidateFunction).

The real host refuses, as a function error at load, a route whose text (outer slashes trimmed,
lower-cased, *without* the `routePrefix`) begins with `admin` or `runtime`: those prefixes are
its own (`/admin/host/status`, `/runtime/webhooks/...`), and the check is a plain prefix test,
so `administrators/x` is refused too. It also refuses a route equal (case-insensitively) to the
route of a function loaded before it when their methods intersect; no methods means all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RESERVED_ROUTE_PREFIXES = ("admin", "runtime")
BUILT_IN_ROUTE_CONFLICT = "The specified route conflicts with one or more built in routes."


def effective_route(function_name: str, trigger: Mapping[str, Any]) -> str:
    """The route the host uses: the function's name when the binding has none (or only blanks)."""
    route = trigger.get("route")
    return function_name if route is None or not str(route).strip() else str(route)


def _methods(trigger: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(m).upper() for m in trigger.get("methods") or ())


def _conflict(route: str, methods: frozenset[str], other_route: str, other_methods: frozenset[str]) -> bool:
    if route.strip("/").lower() != other_route.strip("/").lower():
        return False
    return not methods or not other_methods or bool(methods & other_methods)


def check_http_routes(functions: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, str]:
    """The error of each HTTP function (name, trigger binding) the real host would refuse, in load order."""
    accepted: list[tuple[str, str, frozenset[str]]] = []
    errors: dict[str, str] = {}
    for name, trigger in functions:
        route = effective_route(name, trigger)
        if route.strip("/").lower().startswith(RESERVED_ROUTE_PREFIXES):
            errors[name] = BUILT_IN_ROUTE_CONFLICT
            continue
        methods = _methods(trigger)
        other = next((o for o, r, m in accepted if _conflict(route, methods, r, m)), None)
        if other is not None:
            errors[name] = f"The route specified conflicts with the route defined by function '{other}'."
            continue
        accepted.append((name, route, methods))
    return errors
