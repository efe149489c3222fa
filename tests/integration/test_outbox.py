"""Single sends are sent by the accepting process after it answers; a send whose process
stopped first is found by the outbox recovery and delivered through the queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pushfuncs.background import BackgroundTasks
from pushfuncs.context import get_context
from pushfuncs.services import outbox, sending
from pushfuncs.services.outbox import recover_outbox
from pushfuncs.storage.notifications import NotificationStore
from sandbox import SandboxClient
from tests.harness import finish_background_sends, refuse_outcome_writes
from tests.integration.test_delivery import TOAST, device, driver, send, status

__all__ = ["device"]  # the fixture, shared with the delivery tests

LATER = timedelta(minutes=3)


def lose_background_sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The process stops right after answering 202: its background sends never run."""
    lost: list[str] = []

    def start(self: BackgroundTasks, work: Any, name: str) -> None:
        work.close()
        lost.append(name)

    monkeypatch.setattr(BackgroundTasks, "start", start)
    return lost


async def send_toast(installation_id: str) -> str:
    accepted = await send({"type": "toast", "payload": TOAST, "target": {"installationId": installation_id}})
    assert accepted.status == 202, accepted.body
    return str(accepted.body["id"])


async def test_a_send_lost_with_its_process_is_recovered_and_delivered(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = lose_background_sends(monkeypatch)
    notification_id = await send_toast(device["id"])
    assert lost and sandbox_client.inbox(device["channelId"]) == []
    assert (await status(notification_id))["status"] == "accepted"
    ctx = await get_context()
    # Within the grace period a pending send may still be on its way: left alone.
    assert (await recover_outbox(ctx, datetime.now(UTC))).recovered == 0
    assert (await recover_outbox(ctx, datetime.now(UTC) + LATER)).recovered == 1
    queue = driver(app_env)
    await queue.drain()
    await queue.close()
    assert (await status(notification_id))["status"] == "delivered"
    assert len(sandbox_client.inbox(device["channelId"])) == 1
    # Queued once: later runs do not queue it again.
    assert (await recover_outbox(ctx, datetime.now(UTC) + LATER)).recovered == 0


async def test_sent_notifications_are_not_recovered(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    notification_id = await send_toast(device["id"])
    await finish_background_sends()
    assert (await status(notification_id))["status"] == "delivered"
    report = await recover_outbox(await get_context(), datetime.now(UTC) + LATER)
    assert report.recovered == 0
    assert len(sandbox_client.inbox(device["channelId"])) == 1


async def test_a_send_whose_outcome_could_not_be_recorded_still_ends_recorded(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(NotificationStore, "record_direct_outcomes", refuse_outcome_writes)
        notification_id = await send_toast(device["id"])
        await finish_background_sends()
    assert len(sandbox_client.inbox(device["channelId"])) == 1
    assert (await status(notification_id))["status"] == "accepted"
    assert (await recover_outbox(await get_context(), datetime.now(UTC) + LATER)).recovered == 1
    queue = driver(app_env)
    await queue.drain()
    await queue.close()
    # At least once: the send is repeated because its first outcome was never recorded.
    assert (await status(notification_id))["status"] == "delivered"
    assert len(sandbox_client.inbox(device["channelId"])) == 2


async def test_a_long_backlog_is_recovered_in_bounded_runs(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    lose_background_sends(monkeypatch)
    monkeypatch.setattr(outbox, "MAX_PER_RUN", 2)
    ids = [await send_toast(device["id"]) for _ in range(5)]
    ctx = await get_context()
    runs = [(await recover_outbox(ctx, datetime.now(UTC) + LATER)).recovered for _ in range(4)]
    assert runs == [2, 2, 1, 0]
    queue = driver(app_env)
    await queue.drain()
    await queue.close()
    assert [(await status(i))["status"] for i in ids] == ["delivered"] * 5
    assert len(sandbox_client.inbox(device["channelId"])) == 5


async def test_a_retried_single_send_keeps_its_history(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    sandbox_client.inject_faults(device["channelId"], [{"status": 429, "retryAfter": 1}])
    notification_id = await send_toast(device["id"])
    await finish_background_sends()
    first = await status(notification_id)
    assert first["status"] == "inProgress"
    assert first["targets"][0]["status"] == "retrying"
    assert first["targets"][0]["wns"]["statusCode"] == 429
    queue = driver(app_env)
    await queue.drain()
    await queue.close()
    final = await status(notification_id)
    assert final["status"] == "delivered"
    assert final["targets"][0]["attempts"] == 2
    assert (await recover_outbox(await get_context(), datetime.now(UTC) + LATER)).recovered == 0


async def test_single_sends_beyond_the_background_limit_go_through_the_queue(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sending, "MAX_SENDS_IN_BACKGROUND", 0)
    notification_id = await send_toast(device["id"])
    queue = driver(app_env)
    assert await queue.pending() == 1
    await queue.drain()
    await queue.close()
    assert (await status(notification_id))["status"] == "delivered"
    assert len(sandbox_client.inbox(device["channelId"])) == 1
    # Not an outbox row: the recovery has nothing to do with it.
    assert (await recover_outbox(await get_context(), datetime.now(UTC) + LATER)).recovered == 0
