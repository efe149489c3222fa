"""Send integrity: concurrent requests with one Idempotency-Key, and every accepted notification
ending delivered or failed with a reason per target (oversized renderings, poisoned fan-outs,
channels off the allow-list at send time, the work of a process that stopped after the 202)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ServiceRequestError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from pushfuncs.context import get_context
from pushfuncs.services.outbox import recover_outbox
from pushfuncs.storage.index import tag_key
from pushfuncs.storage.installations import Installation
from sandbox import SandboxClient
from tests.harness import QueueDriver, call_http
from tests.integration.test_targeting import drain_all, received_counts, register_many, send, status

TOAST = "<toast><visual><binding template='ToastGeneric'><text>t</text></binding></visual></toast>"


async def test_concurrent_requests_with_one_idempotency_key_make_one_notification_and_one_delivery(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    single = sandbox_client.create_channel()["channelUri"]
    tagged = [sandbox_client.create_channel()["channelUri"] for _ in range(5)]
    await register_many(
        [("idem-single", single, None, [])] + [(f"idem-{i}", c, None, ["idem"]) for i, c in enumerate(tagged)]
    )
    for target, key in (({"installationId": "idem-single"}, "key-single"), ({"tag": "idem"}, "key-tag")):
        body = {"type": "toast", "payload": TOAST, "target": target}
        answers = await asyncio.gather(*(send(body, headers={"Idempotency-Key": key}) for _ in range(8)))
        assert {code for code, _ in answers} == {202}
        assert len({answer["id"] for _, answer in answers}) == 1
        assert sum(1 for _, answer in answers if answer.get("idempotentReplay")) == 7
    await drain_all(app_env)
    counts = received_counts(sandbox_client)
    assert counts[single] == 1
    assert [counts[c] for c in tagged] == [1] * 5


async def test_one_key_with_another_body_is_refused(app_env: dict[str, str], sandbox_client: SandboxClient) -> None:
    channel = sandbox_client.create_channel()["channelUri"]
    await register_many([("idem-other", channel, None, [])])
    first = {"type": "raw", "payload": "a", "target": {"installationId": "idem-other"}}
    second = {"type": "raw", "payload": "b", "target": {"installationId": "idem-other"}}
    code, _ = await send(first, headers={"Idempotency-Key": "k"})
    assert code == 202
    code, body = await send(second, headers={"Idempotency-Key": "k"})
    assert code == 422 and body["error"]["code"] == "IdempotencyKeyReused"


async def test_a_rendering_over_the_wns_limit_fails_with_its_reason(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    small, big = (sandbox_client.create_channel() for _ in range(2))
    template = {"type": "raw", "body": "$(v)"}
    long_template = {"type": "raw", "body": "$(v)" * 40}
    for installation_id, channel, body in (("fits", small, template), ("too-big", big, long_template)):
        put = await call_http(
            "put_installation",
            "PUT",
            f"installations/{installation_id}",
            {"channelUri": channel["channelUri"], "tags": ["render"], "templates": {"t": body}},
            installationId=installation_id,
        )
        assert put.status == 201, put.body
    code, accepted = await send({"template": "t", "properties": {"v": "x" * 200}, "target": {"tag": "render"}})
    assert code == 202, accepted
    await drain_all(app_env)
    result = await status(accepted["id"])
    assert result["counts"]["targeted"] == 2
    assert result["counts"]["delivered"] == 1 and result["counts"]["failed"] == 1
    [failed] = [t for t in result["targets"] if t["status"] == "failed"]
    assert failed["installationId"] == "too-big" and failed["reason"].startswith("templateNotRenderable")
    assert result["status"] == "partiallyDelivered"
    assert sandbox_client.inbox(big["channelId"]) == []


async def test_a_poisoned_fan_out_marks_its_notification_failed(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()["channelUri"]
    await register_many([("poison-1", channel, None, ["poison"])])
    code, accepted = await send({"type": "raw", "payload": "x", "target": {"tag": "poison"}})
    assert code == 202
    ctx = await get_context()

    async def always_fails(*args: object, **kwargs: object) -> object:
        raise RuntimeError("index unreadable (injected)")

    ctx.index.page = always_fails  # type: ignore[method-assign]
    fanout = QueueDriver(app_env["AzureWebJobsStorage"], app_env["FANOUT_QUEUE"], "expand_notification_targets")
    for _ in range(20):
        await fanout.run_once()
        if await fanout.poison_messages():
            break
        await asyncio.sleep(1.1)
    await fanout.close()
    result = await status(accepted["id"])
    assert result["status"] == "failed" and "poison" in result["reason"]

    # A message that is not even JSON, but names its notification, fails it at once.
    code, second = await send({"type": "raw", "payload": "y", "target": {"tag": "poison"}})
    client = QueueClient.from_connection_string(
        app_env["AzureWebJobsStorage"], app_env["FANOUT_QUEUE"], message_encode_policy=TextBase64EncodePolicy()
    )
    async with client:
        await client.send_message(json.dumps({"v": 99, "id": second["id"]}))
    fanout = QueueDriver(app_env["AzureWebJobsStorage"], app_env["FANOUT_QUEUE"], "expand_notification_targets")
    await fanout.run_once()
    await fanout.close()
    assert (await status(second["id"]))["status"] == "failed"


async def test_a_channel_off_the_allow_list_at_send_time_never_gets_the_token(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    ctx = await get_context()
    now = datetime.now(UTC)
    # As if an index row (or a queued message) named another host: written behind the API's back.
    rogue = Installation("rogue", "http://attacker.example/?token=abc", now + timedelta(days=3), now, now, tags=["x"])
    await ctx.index.put(rogue, [tag_key("x", "rogue")[0]])
    code, accepted = await send({"type": "raw", "payload": "x", "target": {"tag": "x"}})
    assert code == 202
    await drain_all(app_env)
    result = await status(accepted["id"])
    [outcome] = result["targets"]
    assert outcome["status"] == "failed" and outcome["reason"].startswith("channelNotAllowed")
    assert "wns" not in outcome  # no request was made


async def test_fan_out_work_stored_before_the_202_is_queued_by_the_outbox_if_the_queue_failed(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()["channelUri"]
    await register_many([("outbox-1", channel, None, ["ob"])])
    ctx = await get_context()
    real_send = ctx.fanout_queue.send

    async def queue_down(*args: object, **kwargs: object) -> None:
        raise RuntimeError("queue unavailable (injected)")

    ctx.fanout_queue.send = queue_down  # type: ignore[method-assign]
    code, accepted = await send({"type": "raw", "payload": "x", "target": {"tag": "ob"}})
    assert code == 202, accepted
    ctx.fanout_queue.send = real_send  # type: ignore[method-assign]
    report = await recover_outbox(ctx, datetime.now(UTC) + timedelta(minutes=3))
    assert report.recovered == 1
    await drain_all(app_env)
    assert received_counts(sandbox_client)[channel] == 1
    assert (await status(accepted["id"]))["status"] == "delivered"


async def test_a_send_cut_short_after_claiming_its_key_is_finished_by_the_retry(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()["channelUri"]
    await register_many([("cut-short", channel, None, ["cut"])])
    ctx = await get_context()
    real_create = ctx.notifications.create

    async def storage_fails(*args: object, **kwargs: object) -> bool:
        raise ServiceRequestError("storage unreachable after the key was claimed (injected)")

    for target in ({"installationId": "cut-short"}, {"tag": "cut"}):
        key = f"cut-{next(iter(target))}"
        body = {"type": "raw", "payload": "x", "target": target}
        ctx.notifications.create = storage_fails  # type: ignore[method-assign]
        code, _ = await send(body, headers={"Idempotency-Key": key})
        assert code == 503
        ctx.notifications.create = real_create  # type: ignore[method-assign]
        code, retried = await send(body, headers={"Idempotency-Key": key})
        assert code == 202 and not retried.get("idempotentReplay")
        code, replay = await send(body, headers={"Idempotency-Key": key})
        assert code == 202 and replay["id"] == retried["id"] and replay["idempotentReplay"]
    await drain_all(app_env)
    assert received_counts(sandbox_client)[channel] == 2


async def test_a_direct_send_past_its_window_is_left_to_the_recovery_and_made_once(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    """A send stuck in its process (a busy pool, a slow token endpoint) must not go out after
    the outbox recovery has queued it: past its window the process sends nothing."""
    import time

    from pushfuncs.services.delivery import DeliveryService

    channel = sandbox_client.create_channel()["channelUri"]
    await register_many([("late", channel, None, [])])
    ctx = await get_context()
    started: list[object] = []
    real_deliver_direct = DeliveryService.deliver_direct

    async def stuck_until_too_late(self: DeliveryService, message: object, send_by: float | None = None) -> None:
        started.append(message)
        await real_deliver_direct(self, message, time.monotonic() - 1)  # type: ignore[arg-type]

    DeliveryService.deliver_direct = stuck_until_too_late  # type: ignore[method-assign]
    try:
        code, accepted = await send({"type": "raw", "payload": "once", "target": {"installationId": "late"}})
        assert code == 202
        await drain_all(app_env)
    finally:
        DeliveryService.deliver_direct = real_deliver_direct  # type: ignore[method-assign]
    assert started and received_counts(sandbox_client)[channel] == 0
    report = await recover_outbox(ctx, datetime.now(UTC) + timedelta(minutes=3))
    assert report.recovered == 1
    await drain_all(app_env)
    assert received_counts(sandbox_client)[channel] == 1
    assert (await status(accepted["id"]))["status"] == "delivered"
