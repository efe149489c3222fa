"""The smallest reproduction of what the soak test found: retries of one batch split by delay."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devhost.azurite import Azurite
from sandbox import SandboxClient
from tests.harness import QueueDriver, app_environment, call_http
from tests.reliability.support import register_many, toast


@pytest.fixture
async def env(azurite: Azurite, sandbox: object) -> AsyncIterator[dict[str, str]]:
    from pushfuncs.context import close_context

    with app_environment(azurite, sandbox, DELIVERY_MAX_ATTEMPTS="8") as values:
        yield values
        await close_context()


async def test_targets_retried_after_different_delays_are_all_recorded(
    env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channels = [sandbox_client.create_channel() for _ in range(2)]
    ids = [f"split-{i}" for i in range(2)]
    await register_many([(i, c["channelUri"], []) for i, c in zip(ids, channels, strict=True)])
    # Both answer 503 once, with different Retry-After: two retry messages, both attempt 2.
    sandbox_client.inject_faults(channels[0]["channelId"], [{"status": 503, "retryAfter": 1}])
    sandbox_client.inject_faults(channels[1]["channelId"], [{"status": 503, "retryAfter": 2}])
    accepted = await call_http(
        "send_notification",
        "POST",
        "notifications",
        {"type": "toast", "payload": toast("split"), "target": {"installationIds": ids}},
    )
    assert accepted.status == 202, accepted.body
    fanout = QueueDriver(env["AzureWebJobsStorage"], env["FANOUT_QUEUE"], "expand_notification_targets")
    delivery = QueueDriver(env["AzureWebJobsStorage"], env["DELIVERY_QUEUE"], "deliver_notifications")
    await fanout.drain()
    await delivery.drain(timeout=30)
    await fanout.close()
    await delivery.close()
    assert [sandbox_client.channel(c["channelId"])["received"] for c in channels] == [1, 1]
    notification_id = accepted.body["id"]
    status = await call_http("get_notification", "GET", f"notifications/{notification_id}", id=notification_id)
    counts = status.body["counts"]
    assert (counts["delivered"], counts["pending"], status.body["status"]) == (2, 0, "delivered"), status.body
