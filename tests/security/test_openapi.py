"""The OpenAPI document: valid 3.1, exactly the app's routes, and true to what the app answers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from openapi_spec_validator import validate

from pushfuncs.api_openapi import DOCUMENT, openapi_document
from sandbox import SandboxClient
from tests.harness import FUNCTIONS, QueueDriver, call_function, http_request
from tests.security.support import (
    OPENAPI,
    assert_request_documented,
    assert_response_documented,
    call,
    http_routes,
    openapi_functions,
    operation,
    resolve,
)

TOAST = "<toast><visual><binding template='ToastGeneric'><text>hi</text></binding></visual></toast>"


def test_the_document_is_valid_openapi_3_1() -> None:
    assert OPENAPI["openapi"].startswith("3.1.")
    validate(OPENAPI)


def test_the_document_covers_exactly_the_apps_http_routes() -> None:
    app_routes = {**http_routes(FUNCTIONS), **http_routes(openapi_functions())}
    documented: dict[tuple[str, str], tuple[str, bool]] = {}
    for path, item in OPENAPI["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                # Anonymous to the Functions host: no function key (a bearer token is checked by our code).
                requirements = op.get("security", OPENAPI["security"])
                anonymous = not any(name.startswith("functionKey") for r in requirements for name in r)
                documented[(path, method)] = (op["operationId"], anonymous)
    assert documented == app_routes


def test_the_document_route_is_registered_in_the_app() -> None:
    assert "get_openapi" in FUNCTIONS


def test_every_secured_route_takes_the_key_by_header_or_query() -> None:
    schemes = OPENAPI["components"]["securitySchemes"]
    assert schemes["functionKeyHeader"] == {"type": "apiKey", "in": "header", "name": "x-functions-key"}
    assert schemes["functionKeyQuery"] == {"type": "apiKey", "in": "query", "name": "code"}
    assert OPENAPI["security"] == [{"functionKeyHeader": []}, {"functionKeyQuery": []}]


def test_path_parameters_carry_the_id_pattern() -> None:
    for path, item in OPENAPI["paths"].items():
        names = {p.strip("{}") for p in path.split("/") if p.startswith("{")}
        params = [resolve(p) for p in item.get("parameters", [])]
        assert {p["name"] for p in params if p["in"] == "path"} == names, path
        for param in params:
            schema = resolve(param["schema"])
            assert schema["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"


async def test_the_route_serves_the_file_byte_for_byte() -> None:
    function = openapi_functions()["get_openapi"]
    response = await function.get_user_function()(req=http_request("GET", "openapi.json"))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_body() == DOCUMENT.read_bytes() == openapi_document()
    assert json.loads(response.get_body()) == OPENAPI


async def test_real_answers_match_the_documented_schemas(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()
    gone = sandbox_client.create_channel()
    registration = {"channelUri": channel["channelUri"], "userId": "oa-user", "tags": ["oa", "news"]}
    assert_request_documented("put_installation", registration)

    async def put(installation_id: str, body: object) -> Any:
        response = await call(
            "put_installation", "PUT", f"installations/{installation_id}", body, installationId=installation_id
        )
        assert_response_documented("put_installation", response)
        return response

    assert (await put("oa-1", registration)).status == 201
    assert (await put("oa-1", registration)).status == 200
    assert (await put("oa-gone", {"channelUri": gone["channelUri"]})).status == 201
    assert (await put("oa-1", {**registration, "colour": "red"})).status == 400
    assert (await put("oa-1", {"userId": "x"})).status == 400
    assert (await put("oa-1", b"{" + b" " * 70_000 + b"}")).status == 413
    assert (await put("oa 1", registration)).status == 400

    for installation_id, expected in (("oa-1", 200), ("oa-none", 404), ("bad/id", 400)):
        got = await call("get_installation", "GET", "installations/x", installationId=installation_id)
        assert got.status == expected
        assert_response_documented("get_installation", got)

    async def send(body: object, headers: dict[str, str] | None = None) -> Any:
        response = await call("send_notification", "POST", "notifications", body, headers=headers)
        assert_response_documented("send_notification", response)
        return response

    toast = {
        "type": "toast",
        "payload": TOAST,
        "target": {"installationId": "oa-1"},
        "options": {"X-WNS-TTL": 60, "X-WNS-Tag": "t1", "X-WNS-Group": "g1", "X-WNS-PRIORITY": 2},
    }
    raw = {"type": "raw", "payloadBase64": base64.b64encode(b"\x00\x01").decode(), "target": {"userId": "oa-user"}}
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    scheduled = {"type": "badge", "payload": "<badge value='1'/>", "target": {"tag": "oa"}, "sendAt": later}
    to_gone = {"type": "toast", "payload": TOAST, "target": {"installationId": "oa-gone"}}
    for body in (toast, raw, scheduled, to_gone):
        assert_request_documented("send_notification", body)

    first = await send(toast, {"Idempotency-Key": "oa-key"})
    assert first.status == 202
    replay = await send(toast, {"Idempotency-Key": "oa-key"})
    assert replay.status == 202 and replay.body["id"] == first.body["id"]
    assert (await send({**toast, "payload": TOAST + " "}, {"Idempotency-Key": "oa-key"})).status == 422
    assert (await send(raw)).status == 202
    assert (await send(scheduled)).body["status"] == "scheduled"
    sandbox_client.expire_channel(gone["channelId"])
    failed = await send(to_gone)
    assert (await send({**toast, "target": {"installationId": "oa-none"}})).status == 404
    assert (await send({**toast, "type": "email"})).status == 400
    assert (await send(b"[" * 60_000)).status == 400
    assert (await send(b" " * 70_000)).status == 413

    async def status(notification_id: str) -> Any:
        response = await call("get_notification", "GET", "notifications/x", id=notification_id)
        assert_response_documented("get_notification", response)
        return response

    # A single send goes out right after the answer: either state is a documented one.
    assert (await status(first.body["id"])).body["status"] in ("accepted", "delivered")
    queue = QueueDriver(app_env["AzureWebJobsStorage"], app_env["DELIVERY_QUEUE"], "deliver_notifications")
    await queue.drain()
    await queue.close()
    assert (await status(first.body["id"])).body["status"] == "delivered"
    removed = (await status(failed.body["id"])).body
    assert removed["status"] == "failed" and removed["targets"][0]["channelRemoved"] is True
    assert (await status("0" * 32)).status == 404
    assert (await status("no such id")).status == 400

    deleted = await call("delete_installation", "DELETE", "installations/oa-1", installationId="oa-1")
    assert deleted.status == 204
    assert_response_documented("delete_installation", deleted)
    bad_delete = await call("delete_installation", "DELETE", "installations/x", installationId="'")
    assert bad_delete.status == 400
    assert_response_documented("delete_installation", bad_delete)

    for name, method, route in (
        ("health", "GET", "health"),
        ("get_metrics", "GET", "metrics"),
        ("resume_sending", "POST", "sending/resume"),
    ):
        answer = await call(name, method, route)
        assert answer.status == 200
        assert_response_documented(name, answer)
    assert operation("health")[2]["security"] == []
    answer = await call_function("health", req=http_request("GET", "health"))
    assert answer.status_code == 200
