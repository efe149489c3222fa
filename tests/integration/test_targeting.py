"""Targeting at scale: tags, users, expressions, id lists, fan-out crash recovery, idempotency, schedules."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pushfuncs.context import get_context
from pushfuncs.services.fanout import FanoutService
from pushfuncs.services.registration import register_installation
from pushfuncs.tag_expression import evaluate, parse_tag_expression
from pushfuncs.validation import InstallationRequest
from sandbox import SandboxClient
from tests.harness import QueueDriver, call_function, call_http, http_request

TOAST = "<toast><visual><binding template='ToastGeneric'><text>t</text></binding></visual></toast>"


async def register_many(specs: list[tuple[str, str, str | None, list[str]]]) -> None:
    """Register (id, channel, user, tags) through the registration service, 50 at a time."""
    ctx = await get_context()
    now = datetime.now(UTC)
    semaphore = asyncio.Semaphore(50)

    async def one(spec: tuple[str, str, str | None, list[str]]) -> None:
        installation_id, channel, user, tags = spec
        request = InstallationRequest(channel, user, sorted(tags), now + timedelta(days=30))
        async with semaphore:
            await register_installation(ctx.installations, ctx.index, installation_id, request, now)

    await asyncio.gather(*(one(s) for s in specs))


async def drain_all(env: dict[str, str], timeout: float = 180) -> tuple[QueueDriver, QueueDriver]:
    fanout = QueueDriver(env["AzureWebJobsStorage"], env["FANOUT_QUEUE"], "expand_notification_targets")
    delivery = QueueDriver(env["AzureWebJobsStorage"], env["DELIVERY_QUEUE"], "deliver_notifications")
    while True:
        await fanout.drain(timeout=timeout)
        await delivery.drain(timeout=timeout)
        if await fanout.pending() == 0:
            break
    await fanout.close()
    await delivery.close()
    return fanout, delivery


async def send(body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    response = await call_function(
        "send_notification", req=http_request("POST", "notifications", body, headers=headers)
    )
    import json

    return response.status_code, json.loads(response.get_body())


async def status(notification_id: str) -> Any:
    response = await call_http("get_notification", "GET", f"notifications/{notification_id}", id=notification_id)
    return response.body


def received_counts(sandbox_client: SandboxClient) -> dict[str, int]:
    return {c["channelUri"]: c["received"] for c in sandbox_client._call("GET", "/_sandbox/channels")}


async def test_a_tag_of_5000_installations_gets_each_exactly_once(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channels = [sandbox_client.create_channel()["channelUri"] for _ in range(5000)]
    await register_many(
        [(f"fan-{i:05d}", channels[i], None, ["news"] if i % 10 else ["news", "vip"]) for i in range(5000)]
    )
    other = sandbox_client.create_channel()["channelUri"]
    await register_many([("not-news", other, None, ["sports"])])
    code, accepted = await send({"type": "toast", "payload": TOAST, "target": {"tag": "news"}})
    assert code == 202
    fanout, delivery = await drain_all(app_env)
    counts = received_counts(sandbox_client)
    assert [counts[c] for c in channels].count(1) == 5000, (
        sorted(set(counts[c] for c in channels)),
        delivery.errors[:3],
        delivery.failures,
    )
    assert counts[other] == 0
    result = await status(accepted["id"])
    assert result["status"] == "delivered", (result["counts"], delivery.errors)
    assert result["counts"]["targeted"] == 5000
    assert result["counts"]["delivered"] == 5000
    assert result["counts"]["pending"] == 0 and result["counts"]["failed"] == 0
    # Far fewer queue messages than channels: batches of up to 100 per shard's page; one fan-out
    # message starting a lane per shard (16), each reading its shard in one page of up to 1,000.
    assert delivery.invocations <= 16 * 4
    assert fanout.invocations == 1 + 16


async def test_tag_expression_selects_exactly_the_brute_force_set(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    rng = random.Random(7)
    names = ["a", "b", "c", "d"]
    specs = []
    for i in range(300):
        tags = [t for t in names if rng.random() < 0.4]
        specs.append((f"expr-{i:03d}", sandbox_client.create_channel()["channelUri"], None, tags))
    await register_many(specs)
    expression = "(a || b) && !c"
    code, accepted = await send({"type": "toast", "payload": TOAST, "target": {"tagExpression": expression}})
    assert code == 202
    await drain_all(app_env)
    node = parse_tag_expression(expression)
    expected = {uri for _, uri, _, tags in specs if evaluate(node, frozenset(tags))}
    counts = received_counts(sandbox_client)
    got = {uri for _, uri, _, _ in specs if counts[uri] > 0}
    assert got == expected
    assert all(counts[uri] == 1 for uri in got)
    assert (await status(accepted["id"]))["counts"]["delivered"] == len(expected)


async def test_malformed_tag_expression_is_a_clear_400(app_env: dict[str, str]) -> None:
    code, body = await send({"type": "toast", "payload": TOAST, "target": {"tagExpression": "a && (b ||"}})
    assert code == 400
    assert body["error"]["field"] == "target.tagExpression"
    assert body["error"]["code"] == "InvalidTagExpression"


async def test_user_and_id_list_targets(app_env: dict[str, str], sandbox_client: SandboxClient) -> None:
    alice = [sandbox_client.create_channel()["channelUri"] for _ in range(3)]
    bob = sandbox_client.create_channel()["channelUri"]
    await register_many([(f"alice-{i}", c, "alice", []) for i, c in enumerate(alice)] + [("bob-0", bob, "bob", [])])
    code, by_user = await send({"type": "raw", "payload": "call", "target": {"userId": "alice"}})
    assert code == 202
    code, by_ids = await send(
        {"type": "raw", "payload": "ids", "target": {"installationIds": ["alice-0", "bob-0", "nobody"]}}
    )
    assert code == 202
    await drain_all(app_env)
    counts = received_counts(sandbox_client)
    assert [counts[c] for c in alice] == [2, 1, 1]
    assert counts[bob] == 1
    assert (await status(by_user["id"]))["counts"]["delivered"] == 3
    ids_status = await status(by_ids["id"])
    # A named installation that is not registered is a target that failed, with the reason.
    assert ids_status["counts"]["targeted"] == 3 and ids_status["status"] == "partiallyDelivered"
    assert ids_status["counts"]["delivered"] == 2 and ids_status["counts"]["failed"] == 1
    [missing] = [t for t in ids_status["targets"] if t["status"] == "failed"]
    assert missing["installationId"] == "nobody" and missing["reason"].startswith("notRegistered")


async def test_a_crash_in_the_middle_of_a_fan_out_sends_nothing_twice(
    app_env: dict[str, str], sandbox_client: SandboxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = [sandbox_client.create_channel()["channelUri"] for _ in range(450)]
    await register_many([(f"crash-{i:03d}", c, None, ["crashy"]) for i, c in enumerate(channels)])
    code, accepted = await send({"type": "toast", "payload": TOAST, "target": {"tag": "crashy"}})
    assert code == 202

    ctx = await get_context()
    real_record_pages = ctx.notifications.record_pages
    calls = itertools.count()

    async def crash_on_third_lane(notification_id: str, pages: list[tuple[int, int]]) -> None:
        if next(calls) == 2:
            raise RuntimeError("injected crash after a lane's batches were queued, before they were recorded")
        await real_record_pages(notification_id, pages)

    monkeypatch.setattr(ctx.notifications, "record_pages", crash_on_third_lane)
    fanout = QueueDriver(app_env["AzureWebJobsStorage"], app_env["FANOUT_QUEUE"], "expand_notification_targets")
    await fanout.run_once()  # the first message starts one lane per shard
    await fanout.run_once()  # the lanes: one crashes with its batches queued but not recorded
    assert fanout.failures == 1
    monkeypatch.setattr(ctx.notifications, "record_pages", real_record_pages)
    await fanout.close()
    await drain_all(app_env)
    counts = received_counts(sandbox_client)
    assert sorted(counts[c] for c in channels) == [1] * 450
    result = await status(accepted["id"])
    assert result["counts"]["delivered"] == 450 and result["counts"]["targeted"] == 450


async def test_a_retried_send_with_the_same_key_sends_once(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()
    await register_many([("idem-1", channel["channelUri"], None, [])])
    body = {"type": "toast", "payload": TOAST, "target": {"installationId": "idem-1"}}
    first = await send(body, {"Idempotency-Key": "order-42"})
    second = await send(body, {"Idempotency-Key": "order-42"})
    assert first[0] == second[0] == 202
    assert first[1]["id"] == second[1]["id"]
    different = await send({**body, "payload": TOAST.replace(">t<", ">u<")}, {"Idempotency-Key": "order-42"})
    assert different[0] == 422 and different[1]["error"]["code"] == "IdempotencyKeyReused"
    await drain_all(app_env)
    assert len(sandbox_client.inbox(channel["channelId"])) == 1


async def test_scheduled_send_waits_on_the_queue(app_env: dict[str, str], sandbox_client: SandboxClient) -> None:
    channel = sandbox_client.create_channel()
    await register_many([("sched-1", channel["channelUri"], None, [])])
    send_at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat().replace("+00:00", "Z")
    code, accepted = await send(
        {"type": "toast", "payload": TOAST, "target": {"installationId": "sched-1"}, "sendAt": send_at}
    )
    assert code == 202 and accepted["status"] == "scheduled"
    assert (await status(accepted["id"]))["status"] == "scheduled"
    fanout = QueueDriver(app_env["AzureWebJobsStorage"], app_env["FANOUT_QUEUE"], "expand_notification_targets")
    assert await fanout.run_once() == 0  # invisible until sendAt
    await fanout.close()
    await drain_all(app_env, timeout=20)
    assert len(sandbox_client.inbox(channel["channelId"])) == 1
    assert (await status(accepted["id"]))["status"] == "delivered"
    too_far = (datetime.now(UTC) + timedelta(days=8)).isoformat()
    code, body = await send(
        {"type": "toast", "payload": TOAST, "target": {"installationId": "sched-1"}, "sendAt": too_far}
    )
    assert code == 400 and body["error"]["field"] == "sendAt"


async def test_a_scheduled_send_follows_a_re_registration_and_skips_a_removal(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    old, new, gone = (sandbox_client.create_channel() for _ in range(3))
    await register_many([("moving", old["channelUri"], None, []), ("leaving", gone["channelUri"], None, [])])
    send_at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    accepted = {}
    for installation_id in ("moving", "leaving"):
        body = {"type": "raw", "payload": "later", "target": {"installationId": installation_id}, "sendAt": send_at}
        code, accepted[installation_id] = await send(body)
        assert code == 202
    await register_many([("moving", new["channelUri"], None, [])])
    response = await call_http("delete_installation", "DELETE", "installations/leaving", installationId="leaving")
    assert response.status == 204
    await drain_all(app_env, timeout=20)
    assert len(sandbox_client.inbox(new["channelId"])) == 1
    assert sandbox_client.inbox(old["channelId"]) == [] and sandbox_client.inbox(gone["channelId"]) == []
    left = await status(accepted["leaving"]["id"])
    assert left["status"] == "failed" and left["targets"][0]["reason"].startswith("notRegistered")


def test_services_and_the_protocol_module_stay_free_of_the_functions_runtime() -> None:
    """STYLE: services are plain async code; the WNS protocol module imports no Azure package."""
    import ast
    from pathlib import Path

    package = Path(FanoutService.__module__.replace(".", "/")).parent  # pushfuncs/services
    root = Path(__file__).resolve().parents[2]
    checked = [*sorted((root / package).glob("*.py")), root / "pushfuncs" / "wns.py"]
    for path in checked:
        tree = ast.parse(path.read_text())
        imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not any(m.startswith("azure.functions") for m in imported), path.name
        if path.name == "wns.py":
            assert not any(m.startswith("azure") for m in imported)
    assert len(checked) > 5


GREETING = {
    "type": "toast",
    "body": '<toast><visual><binding template="ToastGeneric"><text>Hello $(name)</text></binding></visual></toast>',
}
GREETING_FR = {
    "type": "toast",
    "body": '<toast><visual><binding template="ToastGeneric"><text>Bonjour $(name)</text></binding></visual></toast>',
}


async def test_templates_render_per_device_with_hostile_values_escaped(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    from defusedxml.ElementTree import fromstring

    en, fr, plain = (sandbox_client.create_channel() for _ in range(3))
    for installation_id, channel, templates in (
        ("tpl-en", en, {"greeting": GREETING}),
        ("tpl-fr", fr, {"greeting": GREETING_FR}),
        ("tpl-none", plain, {}),
    ):
        body = {"channelUri": channel["channelUri"], "tags": ["tpl"], "templates": templates}
        put = await call_http(
            "put_installation", "PUT", f"installations/{installation_id}", body, installationId=installation_id
        )
        assert put.status == 201, put.body
    hostile = '</text><evil/>&amp; "x"'
    code, accepted = await send({"template": "greeting", "properties": {"name": hostile}, "target": {"tag": "tpl"}})
    assert code == 202, accepted
    await drain_all(app_env)
    (english,) = sandbox_client.inbox(en["channelId"])
    (french,) = sandbox_client.inbox(fr["channelId"])
    assert fromstring(english["payload"]).find(".//text").text == f"Hello {hostile}"
    assert fromstring(french["payload"]).find(".//text").text == f"Bonjour {hostile}"
    assert fromstring(english["payload"]).find(".//evil") is None
    assert sandbox_client.inbox(plain["channelId"]) == []  # no such template: not targeted
    result = await status(accepted["id"])
    assert result["counts"]["targeted"] == 2 and result["counts"]["delivered"] == 2
    assert result["type"] == "template:greeting"

    code, _direct = await send(
        {"template": "greeting", "properties": {"name": "Ada"}, "target": {"installationId": "tpl-fr"}}
    )
    assert code == 202
    code, missing = await send({"template": "greeting", "target": {"installationId": "tpl-none"}})
    assert code == 404 and missing["error"]["code"] == "TemplateNotFound"
    await drain_all(app_env)
    assert "Bonjour Ada" in sandbox_client.inbox(fr["channelId"])[-1]["payload"]


async def test_built_in_incoming_call_reaches_every_device_of_the_callee(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    phones = [sandbox_client.create_channel() for _ in range(2)]
    await register_many([(f"callee-{i}", c["channelUri"], "callee", []) for i, c in enumerate(phones)])
    code, accepted = await send(
        {
            "template": "incomingCall",
            "properties": {"callerName": "Ada", "callId": "call-9", "callType": "video"},
            "target": {"userId": "callee"},
            "options": {"X-WNS-TTL": 60, "X-WNS-PRIORITY": 1},
        }
    )
    assert code == 202, accepted
    await drain_all(app_env)
    for phone in phones:
        (toast,) = sandbox_client.inbox(phone["channelId"])
        assert 'scenario="incomingCall"' in toast["payload"]
        assert "action=accept&amp;callId=call-9&amp;video=true" in toast["payload"]
    code, bad = await send({"template": "incomingCall", "properties": {"callId": "x"}, "target": {"userId": "callee"}})
    assert code == 400 and bad["error"]["field"] == "properties"


async def test_bad_templates_are_refused_at_registration(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()["channelUri"]
    for templates, field in (
        ({"x": {"type": "toast", "body": "<tile/>"}}, "templates.x.body"),
        ({"x": {"type": "push", "body": "a"}}, "templates.x.type"),
        ({"bad name": {"type": "raw", "body": "a"}}, "templates.bad name"),
        ({"x": {"type": "raw", "body": "a", "extra": 1}}, "templates.x.extra"),
    ):
        put = await call_http(
            "put_installation",
            "PUT",
            "installations/tpl-bad",
            {"channelUri": channel, "templates": templates},
            installationId="tpl-bad",
        )
        assert put.status == 400 and put.body["error"]["field"] == field, put.body


async def test_broadcast_reaches_every_live_installation_once(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channels = [sandbox_client.create_channel()["channelUri"] for _ in range(120)]
    await register_many([(f"all-{i:03d}", c, None, ["x"] if i % 2 else []) for i, c in enumerate(channels)])
    code, accepted = await send({"type": "raw", "payload": "to everyone", "target": {"all": True}})
    assert code == 202
    await drain_all(app_env)
    counts = received_counts(sandbox_client)
    assert [counts[c] for c in channels] == [1] * 120
    result = await status(accepted["id"])
    assert result["counts"]["targeted"] == 120 and result["status"] == "delivered"
    code, body = await send({"type": "raw", "payload": "x", "target": {"all": False}})
    assert code == 400 and body["error"]["field"] == "target.all"
