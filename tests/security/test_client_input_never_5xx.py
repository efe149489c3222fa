"""No body, header or route value a client sends produces a 5xx: through the functions, against
Azurite, as the host calls them. Each input here once answered 500 (or would have been stored
past a Table Storage limit); what the README allows at a limit is stored and read back whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import SandboxClient
from tests.security.support import call, fetch, register, send
from tests.unit.test_input_limits import templates_stored_at
from tests.unit.test_parsers_properties import installation_bodies, send_bodies

TOAST = "<toast><visual><binding template='ToastGeneric'><text>$(name)</text></binding></visual></toast>"


def refused(response: Any, field: str) -> None:
    assert response.status == 400, response.body
    error = response.body["error"]
    assert error["code"] and error["message"]
    assert error["field"] == field, error


@pytest.fixture
async def device(app_env: dict[str, str], sandbox_client: SandboxClient) -> dict[str, Any]:
    channel = sandbox_client.create_channel()
    body = {
        "channelUri": channel["channelUri"],
        "tags": ["t"],
        "templates": {"hello": {"type": "toast", "body": TOAST}},
    }
    response = await register("dev", body)
    assert response.status == 201, response.body
    return {"id": "dev", **channel}


@pytest.mark.parametrize("uri", ["https://localhost]/?token=a", "https://[localhost/?token=a", "{channel}\n"])
async def test_brackets_or_a_trailing_newline_in_a_channel_uri_are_400(uri: str, device: dict[str, Any]) -> None:
    refused(await register("bad-uri", {"channelUri": uri.format(channel=device["channelUri"])}), "channelUri")
    assert (await fetch("bad-uri")).status == 404


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
async def test_dates_that_overflow_in_utc_are_400(value: str, device: dict[str, Any]) -> None:
    refused(await register("dates", {"channelUri": device["channelUri"], "expiresAt": value}), "expiresAt")
    target = {"installationId": device["id"]}
    refused(await send({"type": "raw", "payload": "x", "target": target, "sendAt": value}), "sendAt")


@pytest.mark.parametrize("expression", ["(" * 400 + "t" + ")" * 400, "!" * 998 + "t"])
async def test_deeply_nested_tag_expressions_are_400(expression: str, device: dict[str, Any]) -> None:
    refused(
        await send({"type": "raw", "payload": "x", "target": {"tagExpression": expression}}), "target.tagExpression"
    )


async def test_a_lone_surrogate_is_400_naming_the_field(device: dict[str, Any]) -> None:
    one = {"installationId": device["id"]}
    cases: list[tuple[Any, str]] = [
        (send({"type": "raw", "payload": "\ud800", "target": one}), "payload"),
        (send({"type": "toast", "payload": "<toast>\ud800</toast>", "target": one}), "payload"),
        (send({"template": "hello", "properties": {"name": "\ud800"}, "target": one}), "properties.name"),
        (send({"template": "hello", "properties": {"name": "\ud800"}, "target": {"tag": "t"}}), "properties.name"),
        (send({"type": "raw", "payload": "x", "target": {"tag": "t\ud800"}}), "target.tag"),
        (send({"type": "raw", "payload": "x", "target": {"userId": "\ud800"}}), "target.userId"),
        (send({"type": "raw", "payload": "x", "target": one}, {"Idempotency-Key": "k\ud800"}), "Idempotency-Key"),
        (register("dev", {"channelUri": device["channelUri"], "userId": "\ud800"}), "userId"),
        (register("dev", {"channelUri": device["channelUri"], "tags": ["\ud800"]}), "tags[0]"),
        (
            register(
                "dev", {"channelUri": device["channelUri"], "templates": {"x": {"type": "raw", "body": "\ud800"}}}
            ),
            "templates.x.body",
        ),
        (register("dev\ud800", {"channelUri": device["channelUri"]}), "installationId"),
        (call("get_notification", "GET", "x", id="\ud800"), "id"),
    ]
    for pending, field in cases:
        refused(await pending, field)
    assert (await fetch("dev")).body["tags"] == ["t"]  # nothing half-stored


async def test_a_template_property_that_xml_cannot_carry_is_400(device: dict[str, Any]) -> None:
    response = await send({"template": "hello", "properties": {"name": "a\x01"}, "target": {"installationId": "dev"}})
    refused(response, "template")


async def test_a_long_id_list_is_stored_and_read_back_whole(app_env: dict[str, str], device: dict[str, Any]) -> None:
    # 300 ids of 128 characters: the target is over one table property's 32K characters.
    ids = sorted(f"{n:04d}" + "x" * 124 for n in range(300))
    response = await send({"type": "raw", "payload": "x", "target": {"installationIds": ids}})
    assert response.status == 202, response.body
    status = await call("get_notification", "GET", "x", id=response.body["id"])
    assert status.status == 200, status.body
    assert status.body["target"] == {"installationIds": ids}


@pytest.mark.parametrize(("count", "length"), [(490, 128), (1000, 60)], ids=["longest-ids", "most-ids"])
async def test_the_longest_id_lists_a_64_kib_body_holds_are_accepted(
    count: int, length: int, device: dict[str, Any]
) -> None:
    # Past one queue message's 64 KiB as well as one table property's 32K characters.
    ids = sorted(f"{n:04d}" + "x" * (length - 4) for n in range(count))
    body = json.dumps({"type": "raw", "payload": "x", "target": {"installationIds": ids}}).encode()
    assert 60 * 1024 < len(body) <= 64 * 1024
    response = await send(body)
    assert response.status == 202, response.body
    status = await call("get_notification", "GET", "x", id=response.body["id"])
    assert status.body["target"] == {"installationIds": ids}


async def test_templates_at_the_stored_limit_are_stored_and_one_more_character_is_400(device: dict[str, Any]) -> None:
    at_limit = templates_stored_at(30_000)
    response = await register("templated", {"channelUri": device["channelUri"], "templates": at_limit})
    assert response.status == 201, response.body
    assert (await fetch("templated")).body["templates"] == at_limit
    over = templates_stored_at(30_001)
    refused(await register("templated", {"channelUri": device["channelUri"], "templates": over}), "templates")
    # Under 30,000 characters as sent, over a table property's 32K once stored: 400, not 500.
    backslashes = {f"t{i}": {"type": "raw", "body": "\\" * 2990} for i in range(10)}
    refused(await register("templated", {"channelUri": device["channelUri"], "templates": backslashes}), "templates")
    assert (await fetch("templated")).body["templates"] == at_limit


async def test_an_installation_with_every_field_at_its_limit_is_stored_whole(device: dict[str, Any]) -> None:
    # The registry entity and each of its index rows hold all of it: no property or entity limit is passed.
    channel = device["channelUri"] + "&pad=" + "p" * 2048
    channel = channel[:2048]
    installation_id = "i" * 128
    body = {
        "channelUri": channel,
        "userId": "u" * 128,
        "tags": sorted(f"{n:02d}" + "t" * 118 for n in range(60)),
        "templates": templates_stored_at(30_000),
    }
    response = await register(installation_id, body)
    assert response.status == 201, response.body
    stored = (await fetch(installation_id)).body
    assert {key: stored[key] for key in body} == body


async def test_properties_at_their_stored_limit_fit_a_fan_out_message(device: dict[str, Any]) -> None:
    # {"n":"..."} with 1,332 "\x01", each stored as \u0001: 8 + 7,992 = 8,000 characters.
    at_limit = {"n": "\x01" * 1332}
    response = await send({"template": "hello", "properties": at_limit, "target": {"tag": "t"}})
    assert response.status == 202, response.body
    over = {"n": "\x01" * 1332 + "x"}
    refused(await send({"template": "hello", "properties": over, "target": {"tag": "t"}}), "properties")


async def test_a_body_of_exactly_64_kib_is_accepted_and_one_byte_more_is_413(device: dict[str, Any]) -> None:
    body = json.dumps({"channelUri": device["channelUri"]}).encode()
    exact = body[:-1] + b" " * (64 * 1024 - len(body)) + b"}"
    assert len(exact) == 64 * 1024
    assert (await register("sized", exact)).status == 201
    assert (await register("sized", exact[:-1] + b" }")).status == 413


async def test_ambiguous_or_non_standard_json_is_400(device: dict[str, Any]) -> None:
    one = b'{"installationId":"dev"}'
    for body in (
        b'{"type":"raw","payload":"x","target":' + one + b',"target":{"tag":"t"}}',
        b'{"type":"raw","payload":"x","target":' + one + b',"options":{"ttl":NaN}}',
        b'{"type":"raw","payload":"x","target":' + one + b',"options":{"ttl":1e400}}',
        b'{"type":"raw","payload":"\xc3\x28","target":' + one + b"}",
    ):
        response = await send(body)
        assert response.status == 400, (body, response.body)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    send_body=send_bodies,
    install_body=installation_bodies,
    key=st.none() | st.text(max_size=300) | st.sampled_from(["k", "\ud800", "k" * 255, "k" * 256, ""]),
    route_id=st.sampled_from(["dev", "dev\n", "a" * 129, "\ud800", "x/y", ""]) | st.text(max_size=20),
)
async def test_generated_requests_never_answer_5xx(
    device: dict[str, Any], send_body: dict[str, Any], install_body: dict[str, Any], key: str | None, route_id: str
) -> None:
    answers = [
        await call(
            "send_notification",
            "POST",
            "notifications",
            send_body,
            headers=None if key is None else {"Idempotency-Key": key},
        ),
        await register(route_id, install_body),
        await fetch(route_id),
        await call("get_notification", "GET", "x", id=route_id),
    ]
    for answer in answers:
        assert answer.status < 500, answer.body
        if answer.status >= 400:
            assert answer.body["error"]["code"] and answer.body["error"]["message"]
