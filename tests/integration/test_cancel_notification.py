"""DELETE /api/notifications/{id}: a scheduled notification is cancelled until it fires, never both,
and a send that has started or was never scheduled answers 409."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta

from pushfuncs.context import get_context
from pushfuncs.services.fanout import FanoutService
from pushfuncs.storage.notifications import NotificationStore
from sandbox import SandboxClient
from tests.harness import QueueDriver, Response
from tests.integration.test_targeting import drain_all, register_many, send, status
from tests.registry_checks import JitterTable
from tests.security.support import assert_response_documented, call

TOAST = "<toast><visual><binding template='ToastGeneric'><text>later</text></binding></visual></toast>"


async def cancel(notification_id: str) -> Response:
    response = await call("cancel_notification", "DELETE", f"notifications/{notification_id}", id=notification_id)
    assert_response_documented("cancel_notification", response)
    return response


async def run_visible(env: dict[str, str]) -> None:
    """Run what the queues hold now (the scheduled message itself stays delayed)."""
    fanout = QueueDriver(env["AzureWebJobsStorage"], env["FANOUT_QUEUE"], "expand_notification_targets")
    delivery = QueueDriver(env["AzureWebJobsStorage"], env["DELIVERY_QUEUE"], "deliver_notifications")
    while await fanout.run_once():
        pass
    await delivery.drain(timeout=20)
    await fanout.close()
    await delivery.close()


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def test_a_cancelled_scheduled_send_sends_nothing(app_env: dict[str, str], sandbox_client: SandboxClient) -> None:
    channels = [sandbox_client.create_channel() for _ in range(3)]
    await register_many([(f"cancel-{i}", c["channelUri"], None, ["cancel"]) for i, c in enumerate(channels)])
    code, accepted = await send({"type": "toast", "payload": TOAST, "target": {"tag": "cancel"}, "sendAt": _in(2)})
    assert code == 202 and accepted["status"] == "scheduled"

    first = await cancel(accepted["id"])
    assert first.status == 200 and first.body["status"] == "cancelled", first.body
    again = await cancel(accepted["id"])
    assert again.status == 200 and again.body["status"] == "cancelled"

    await asyncio.sleep(2.5)
    await drain_all(app_env, timeout=20)
    assert all(sandbox_client.inbox(c["channelId"]) == [] for c in channels)
    final = await status(accepted["id"])
    assert final["status"] == "cancelled" and final["counts"]["delivered"] == 0


async def test_too_late_or_nothing_to_cancel_is_a_409_and_unknown_a_404(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()
    await register_many([("late", channel["channelUri"], None, [])])
    code, scheduled = await send(
        {"type": "toast", "payload": TOAST, "target": {"installationId": "late"}, "sendAt": _in(1)}
    )
    assert code == 202
    await asyncio.sleep(1.5)
    await drain_all(app_env, timeout=20)
    started = await cancel(scheduled["id"])
    assert started.status == 409 and started.body["error"]["code"] == "NotificationStarted"
    final = await status(scheduled["id"])
    assert final["status"] == "delivered", final

    code, now = await send({"type": "toast", "payload": TOAST, "target": {"installationId": "late"}})
    assert code == 202
    immediate = await cancel(now["id"])
    assert immediate.status == 409 and immediate.body["error"]["code"] == "NotScheduled"

    unknown = await cancel("0190000000000000000000000000abcd")
    assert unknown.status == 404 and unknown.body["error"]["code"] == "NotificationNotFound"
    bad = await cancel("../x")
    assert bad.status == 400 and bad.body["error"]["field"] == "id"


async def test_cancel_and_firing_race_and_exactly_one_wins(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    ctx = await get_context()
    rng = random.Random(2026)
    channel = sandbox_client.create_channel()
    await register_many([("raced", channel["channelUri"], None, ["raced"])])
    jittered = NotificationStore(JitterTable(ctx.notifications.table, rng))
    outcomes = {"cancelled": 0, "fired": 0}
    for _ in range(12):
        target = rng.choice(({"tag": "raced"}, {"installationId": "raced"}))
        code, accepted = await send({"type": "raw", "payload": "x", "target": target, "sendAt": _in(60)})
        assert code == 202
        summary = await ctx.notifications.table.get_entity(accepted["id"], "summary")
        work = str(summary["Work"]).encode()  # the fan-out message that waits on the queue
        ctx.notifications = jittered
        # The queued message fires early (as if sendAt had come) while a cancel arrives.
        fired, cancelled = await asyncio.gather(FanoutService(ctx).process(work), cancel(accepted["id"]))
        assert fired is None and cancelled.status in (200, 409), cancelled.body
        ctx.notifications = NotificationStore(ctx.notifications.table._table)
        before = len(sandbox_client.inbox(channel["channelId"]))
        await run_visible(app_env)
        delivered = len(sandbox_client.inbox(channel["channelId"])) - before
        final = await status(accepted["id"])
        if cancelled.status == 200:
            outcomes["cancelled"] += 1
            assert delivered == 0 and final["status"] == "cancelled", final
        else:
            outcomes["fired"] += 1
            assert cancelled.body["error"]["code"] == "NotificationStarted"
            assert delivered == 1 and final["status"] == "delivered", final
        # Whatever the queue delivers later (the real delayed message) sends nothing more.
        await FanoutService(ctx).process(work)
        await run_visible(app_env)
        assert len(sandbox_client.inbox(channel["channelId"])) == before + delivered
    print(f"\ncancel vs fire, 12 races: {outcomes}")
    assert json.dumps(outcomes)  # both counts are reported; which wins depends on the seeded timing
