"""Helpers for the security tests: calls with headers, and checks against the OpenAPI document."""

from __future__ import annotations

import functools
import json
from typing import Any

import azure.functions as func
from jsonschema import Draft202012Validator

from pushfuncs.api_openapi import DOCUMENT
from tests.harness import FUNCTIONS, Response, call_function, http_request

OPENAPI: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))


def http_routes(functions: dict[str, Any]) -> dict[tuple[str, str], tuple[str, bool]]:
    """(path, method) -> (function name, anonymous) for every HTTP-triggered function."""
    routes: dict[tuple[str, str], tuple[str, bool]] = {}
    for name, function in functions.items():
        trigger = function.get_trigger()
        if trigger.type != "httpTrigger":
            continue
        anonymous = trigger.auth_level == func.AuthLevel.ANONYMOUS
        for method in trigger.methods:
            routes[("/" + trigger.route, str(getattr(method, "value", method)).lower())] = (name, anonymous)
    return routes


@functools.cache
def openapi_functions() -> dict[str, Any]:
    """The document's function, whether or not function_app.py registers its blueprint yet."""
    if "get_openapi" in FUNCTIONS:
        return {"get_openapi": FUNCTIONS["get_openapi"]}
    from pushfuncs import api_openapi

    probe = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    probe.register_functions(api_openapi.bp)
    return {f.get_function_name(): f for f in probe.get_functions()}


def operation(operation_id: str) -> tuple[str, str, dict[str, Any]]:
    for path, item in OPENAPI["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return path, method, op
    raise KeyError(operation_id)


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node and len(node) == 1:
        target: Any = OPENAPI
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    # The schema's own "#/components/..." references resolve against the document's components.
    root = {"components": OPENAPI["components"], **schema}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_request_documented(operation_id: str, body: object) -> None:
    """A request the app accepts must also be valid by the document's request schema."""
    _, _, op = operation(operation_id)
    schema = resolve(op["requestBody"])["content"]["application/json"]["schema"]
    validator(schema).validate(body)


def assert_response_documented(operation_id: str, response: Response) -> None:
    """The status is documented for the operation and the body (and headers) match its schema."""
    _, _, op = operation(operation_id)
    documented = op["responses"]
    assert str(response.status) in documented, f"{operation_id} answered undocumented {response.status}"
    spec = resolve(documented[str(response.status)])
    content = spec.get("content")
    if content is None:
        assert response.body is None, f"{operation_id} {response.status} has an undocumented body"
    else:
        validator(content["application/json"]["schema"]).validate(response.body)
    for name, header in spec.get("headers", {}).items():
        value = response.headers.get(name)
        if header.get("required"):
            assert value is not None, f"{operation_id} {response.status} lacks header {name}"
        if value is not None:
            validator(header["schema"]).validate(value)


async def call(
    name: str,
    method: str,
    route: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    **route_params: str,
) -> Response:
    """Call an HTTP function as the host would, with optional extra headers."""
    request = http_request(method, route, body, route_params=route_params, headers=headers)
    response: func.HttpResponse = await call_function(name, req=request)
    raw = response.get_body()
    parsed = json.loads(raw) if raw else None
    return Response(response.status_code, parsed, dict(response.headers))


async def register(installation_id: str, body: object) -> Any:
    """PUT an installation through the backend route."""
    return await call(
        "put_installation", "PUT", f"installations/{installation_id}", body, installationId=installation_id
    )


async def fetch(installation_id: str) -> Any:
    """GET an installation through the backend route."""
    return await call("get_installation", "GET", "installations/x", installationId=installation_id)


async def send(body: object, headers: dict[str, str] | None = None) -> Any:
    """POST a notification through the backend route."""
    return await call("send_notification", "POST", "notifications", body, headers=headers)
