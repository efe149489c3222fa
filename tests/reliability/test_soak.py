"""Soak: 2,050 notifications through fan-out and delivery while WNS misbehaves.

20 tag sends to 100 installations and 50 single sends, with a seeded mix of 500, 503, 406 and
429 (Retry-After 1 s), timeouts, dropped connections and `dropped` answers on every WNS send, and
every WNS token revoked part way (401s). Afterwards every (notification, installation) pair must
be accounted for: delivered and in the channel's inbox, or failed with a recorded reason and not
in the inbox; nothing pending; duplicates within the documented at-least-once window.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devhost.azurite import Azurite
from pushfuncs.metrics import metrics
from sandbox import SandboxClient
from tests.harness import QueueDriver, app_environment, call_http
from tests.reliability.support import counts_delta, payload_counts, register_many, toast

TAGGED = 100
TAG_SENDS = 20
SINGLES = 50
FAULT_MIX = {"500": 0.04, "503": 0.04, "406": 0.03, "429": 0.02, "timeout": 0.01, "drop": 0.02, "dropped": 0.005}
SEED = 9
# Duplicates happen only when a send is accepted but its outcome is not recorded; none of the
# faults here does that, so any duplicate would be a bug. The bound leaves room for a host retry.
MAX_DUPLICATE_RATE = 0.005
SETTLED = ("delivered", "partiallyDelivered", "failed")


@pytest.fixture
async def soak_env(azurite: Azurite, sandbox: object, sandbox_client: SandboxClient) -> AsyncIterator[dict[str, str]]:
    from pushfuncs.context import close_context

    with app_environment(azurite, sandbox, DELIVERY_MAX_ATTEMPTS="8") as values:
        try:
            yield values
        finally:
            sandbox_client.set_fault_mix()  # the sandbox is shared by the whole session
            await close_context()


async def post_notification(body: dict[str, Any]) -> str:
    response = await call_http("send_notification", "POST", "notifications", body)
    assert response.status == 202, response.body
    return str(response.body["id"])


async def notification_status(notification_id: str) -> dict[str, Any]:
    response = await call_http("get_notification", "GET", f"notifications/{notification_id}", id=notification_id)
    assert response.status == 200, response.body
    return dict(response.body)


async def deliver_everything(env: dict[str, str], sandbox_client: SandboxClient, timeout: float) -> dict[str, int]:
    """Drive fan-out, then delivery; revoke every WNS token after the first delivery batch."""
    fanout = QueueDriver(env["AzureWebJobsStorage"], env["FANOUT_QUEUE"], "expand_notification_targets")
    delivery = QueueDriver(env["AzureWebJobsStorage"], env["DELIVERY_QUEUE"], "deliver_notifications")
    deadline = time.monotonic() + timeout
    revoked = 0
    try:
        await fanout.drain(timeout=timeout)
        while True:
            processed = await delivery.run_once()
            if processed and not revoked:
                revoked = sandbox_client.revoke_tokens()
                assert revoked >= 1
            if not processed:
                if await delivery.pending() == 0 and await fanout.pending() == 0:
                    break
                if await fanout.pending():
                    await fanout.run_once()
                assert time.monotonic() < deadline, f"still {await delivery.pending()} delivery messages"
                await asyncio.sleep(0.2)
        assert await delivery.poison_messages() == [], delivery.errors[:5]
        return {
            "fanoutInvocations": fanout.invocations,
            "deliveryInvocations": delivery.invocations,
            "invocationFailures": fanout.failures + delivery.failures,
        }
    finally:
        await fanout.close()
        await delivery.close()


async def test_every_notification_is_accounted_for_under_a_fault_mix(
    soak_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    started = time.monotonic()
    tagged = [sandbox_client.create_channel() for _ in range(TAGGED)]
    single = [sandbox_client.create_channel() for _ in range(SINGLES)]
    tag = f"soak{soak_env['DELIVERY_QUEUE'][-10:]}"
    installation_of: dict[str, str] = {}  # installation id -> channel id
    specs: list[tuple[str, str, list[str]]] = []
    for i, channel in enumerate(tagged):
        installation_of[f"soak-t{i:03d}"] = channel["channelId"]
        specs.append((f"soak-t{i:03d}", channel["channelUri"], [tag]))
    for i, channel in enumerate(single):
        installation_of[f"soak-s{i:03d}"] = channel["channelId"]
        specs.append((f"soak-s{i:03d}", channel["channelUri"], []))
    await register_many(specs)

    sends: dict[str, str] = {}  # notification id -> payload
    for n in range(TAG_SENDS):
        payload = toast(f"soak tag send {n}")
        sends[await post_notification({"type": "toast", "payload": payload, "target": {"tag": tag}})] = payload
    for i in range(SINGLES):
        payload = toast(f"soak single send {i}")
        body = {"type": "toast", "payload": payload, "target": {"installationId": f"soak-s{i:03d}"}}
        sends[await post_notification(body)] = payload

    tokens_before = sandbox_client.stats()["tokenRequests"]
    stats_before = sandbox_client.stats()["wnsSends"]
    metrics_before = metrics.snapshot()
    sandbox_client.set_fault_mix(FAULT_MIX, seed=SEED, retry_after=1, timeout_seconds=2)
    driven = await deliver_everything(soak_env, sandbox_client, timeout=170)
    sandbox_client.set_fault_mix()
    stats_after = sandbox_client.stats()["wnsSends"]
    tokens_after = sandbox_client.stats()["tokenRequests"]

    inboxes = payload_counts(sandbox_client, list(installation_of.values()))
    totals: Counter[str] = Counter()
    failed_by_reason: Counter[str] = Counter()
    left: Counter[str] = Counter()  # targets neither delivered nor failed, by status
    duplicates = 0
    problems: list[str] = []
    for notification_id, payload in sends.items():
        summary = await notification_status(notification_id)
        counts = summary["counts"]
        targets = {t["installationId"]: t for t in summary["targets"]}
        for key in ("targeted", "delivered", "failed", "pending"):
            totals[key] += counts[key]
        if len(targets) != counts["targeted"]:  # every target is listed (at most 100 per notification)
            problems.append(f"{notification_id}: {len(targets)} targets listed, {counts['targeted']} targeted")
        if counts["delivered"] + counts["failed"] != counts["targeted"] or summary["status"] not in SETTLED:
            problems.append(f"{notification_id}: {summary['status']} {counts}")
        for installation_id, target in targets.items():
            received = inboxes[installation_of[installation_id]][payload]
            duplicates += max(0, received - 1)
            where = f"{notification_id}/{installation_id}"
            if target["status"] == "delivered":
                if received < 1:
                    problems.append(f"{where}: delivered, not received")
            elif target["status"] == "failed":
                failed_by_reason[str(target.get("reason"))] += 1
                if not target.get("reason"):
                    problems.append(f"{where}: failed without a reason")
                if received:
                    problems.append(f"{where}: failed, yet received {received} time(s)")
            else:
                left[target["status"]] += 1
                problems.append(
                    f"{where}: left {target['status']} after attempt {target['attempts']}, received {received}"
                )
    expected_targets = TAG_SENDS * TAGGED + SINGLES
    received_total = sum(sum(c.values()) for c in inboxes.values())

    by_status = counts_delta(stats_after["byStatus"], stats_before["byStatus"])
    by_outcome = counts_delta(stats_after["byOutcome"], stats_before["byOutcome"])
    faults = {k: v for k, v in by_status.items() if k != "200"}
    app_metrics = counts_delta(metrics.snapshot(), metrics_before)
    errors = {k: v for k, v in faults.items() if k != "401"}
    injected = sum(errors.values()) + by_outcome.get("connectionDropped", 0) + by_outcome.get("dropped", 0)
    print(
        "\nSOAK RESULTS",
        f"\n  notifications: {len(sends)} ({TAG_SENDS} tag sends x {TAGGED} installations + {SINGLES} single sends)",
        f"\n  targeted: {totals['targeted']}  delivered: {totals['delivered']}  failed: {totals['failed']}"
        f"  pending: {totals['pending']} {dict(left) or ''}",
        f"\n  failed by reason: {dict(failed_by_reason)}",
        f"\n  received by the channels: {received_total}; duplicates (same notification received twice): {duplicates}",
        f"\n  WNS sends: {sum(by_status.values()) + by_outcome.get('connectionDropped', 0)}  by status: {by_status}",
        f"\n  WNS outcomes: {by_outcome}",
        f"\n  faults injected: {injected} ({sum(errors.values())} error answers {errors},"
        f" {by_outcome.get('connectionDropped', 0)} timeouts or dropped connections,"
        f" {by_outcome.get('dropped', 0)} 'dropped' answers), plus {faults.get('401', 0)} 401s after the revocation",
        f"\n  app: retries enqueued {app_metrics.get('delivery.retries.enqueued', 0)},"
        f" 401s seen {app_metrics.get('wns.invalidtoken', 0)},"
        f" Entra token requests {tokens_after['issued'] - tokens_before['issued']},"
        f" delivery invocations {driven['deliveryInvocations']}, that raised {driven['invocationFailures']}",
        f"\n  wall time: {time.monotonic() - started:.0f} s",
    )
    assert problems == [], f"{len(problems)} problems: {problems[:10]}"
    assert totals["targeted"] == expected_targets
    assert totals["delivered"] + totals["failed"] == expected_targets
    assert sum(failed_by_reason.values()) == totals["failed"]
    # Nothing arrived that these notifications did not send.
    assert received_total == totals["delivered"] + duplicates
    assert faults.get("401", 0) >= 1, "the token revocation must have been seen"
    assert injected >= 200, (by_status, by_outcome)
    assert duplicates <= MAX_DUPLICATE_RATE * expected_targets, duplicates
