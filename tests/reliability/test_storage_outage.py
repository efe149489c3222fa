"""Storage outage: the API answers a JSON 503 quickly while storage is down, and work accepted
before the outage is delivered once storage is back.

The app runs on the in-process LocalFunctionsHost (real HTTP, real queue polling) against an
Azurite of its own that keeps its data on disk, stopped and restarted on the same ports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost.host import LocalFunctionsHost
from sandbox import SandboxClient
from tests.harness import app_environment
from tests.reliability.support import PersistentAzurite, fresh_app, host_root, toast

ANSWER_WITHIN = 30.0
SINGLES = 8


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[PersistentAzurite]:
    storage = PersistentAzurite.on_free_ports(tmp_path / "azurite")
    storage.start()
    try:
        yield storage
    finally:
        storage.stop()


@pytest.fixture
async def host(own_azurite: PersistentAzurite, sandbox: object, tmp_path: Path) -> AsyncIterator[LocalFunctionsHost]:
    from pushfuncs.context import close_context

    with app_environment(own_azurite, sandbox, DELIVERY_MAX_ATTEMPTS="8") as values:
        running = LocalFunctionsHost(
            fresh_app(), root=host_root(tmp_path / "root"), settings=values, port=0, keys_path=tmp_path / "keys.json"
        )
        async with running:
            yield running
        await close_context()


async def timed(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.request(method, url, **kwargs)
    return response, time.monotonic() - started


def assert_storage_unavailable(response: httpx.Response, elapsed: float) -> None:
    print(
        f"\n  during the outage: {response.request.method} {response.request.url.path} -> {response.status_code}"
        f" in {elapsed:.1f} s",
        end="",
    )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "StorageUnavailable"
    assert elapsed < ANSWER_WITHIN, elapsed


async def test_outage_answers_503_and_accepted_work_is_delivered_after_it(
    host: LocalFunctionsHost, own_azurite: PersistentAzurite, sandbox_client: SandboxClient
) -> None:
    assert host.keys is not None
    headers = {"x-functions-key": host.keys.default_function_key}
    async with httpx.AsyncClient(base_url=host.base_url, headers=headers, timeout=ANSWER_WITHIN + 10) as client:
        assert (await client.get("/api/health")).status_code == 200
        channels = [sandbox_client.create_channel() for _ in range(SINGLES + 4)]
        installation_ids = [f"outage-{i:02d}" for i in range(len(channels))]
        for installation_id, channel in zip(installation_ids, channels, strict=True):
            tags = ["outage"] if installation_id >= f"outage-{SINGLES:02d}" else []
            response = await client.put(
                f"/api/installations/{installation_id}", json={"channelUri": channel["channelUri"], "tags": tags}
            )
            assert response.status_code == 201, response.text

        # Accepted now, due a few seconds later: still on the queue when storage goes away.
        send_at = (datetime.now(UTC) + timedelta(seconds=6)).isoformat().replace("+00:00", "Z")
        expected: dict[str, list[str]] = {}  # notification id -> installations
        for i in range(SINGLES):
            body = {"type": "toast", "payload": toast(f"outage {i}"), "target": {"installationId": installation_ids[i]}}
            response = await client.post("/api/notifications", json={**body, "sendAt": send_at})
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "scheduled"
            expected[response.json()["id"]] = [installation_ids[i]]
        body = {"type": "toast", "payload": toast("outage tag"), "target": {"tag": "outage"}, "sendAt": send_at}
        response = await client.post("/api/notifications", json=body)
        assert response.status_code == 202, response.text
        expected[response.json()["id"]] = installation_ids[SINGLES:]

        own_azurite.stop()
        outage_started = time.monotonic()
        try:
            health, elapsed = await timed(client, "GET", "/api/health")
            assert health.status_code == 503 and health.json()["storage"] == "unreachable", health.text
            assert elapsed < ANSWER_WITHIN
            post, elapsed = await timed(
                client,
                "POST",
                "/api/notifications",
                json={"type": "toast", "payload": toast("refused"), "target": {"installationId": installation_ids[0]}},
            )
            assert_storage_unavailable(post, elapsed)
            post, elapsed = await timed(
                client,
                "POST",
                "/api/notifications",
                json={"type": "toast", "payload": toast("refused"), "target": {"tag": "outage"}},
            )
            assert_storage_unavailable(post, elapsed)
            put, elapsed = await timed(
                client, "PUT", "/api/installations/outage-new", json={"channelUri": channels[0]["channelUri"]}
            )
            assert_storage_unavailable(put, elapsed)
            status, elapsed = await timed(client, "GET", f"/api/notifications/{next(iter(expected))}")
            assert_storage_unavailable(status, elapsed)
            # Stay down past sendAt, so the host's queue listeners meet the outage with work due.
            await asyncio.sleep(max(0.0, 8 - (time.monotonic() - outage_started)))
            assert all(sandbox_client.channel(c["channelId"])["received"] == 0 for c in channels)
        finally:
            own_azurite.start()

        deadline = time.monotonic() + 60
        summaries: dict[str, Any] = {}
        while time.monotonic() < deadline:
            for notification_id in expected:
                response = await client.get(f"/api/notifications/{notification_id}")
                if response.status_code == 200:
                    summaries[notification_id] = response.json()
            if len(summaries) == len(expected) and all(s["status"] == "delivered" for s in summaries.values()):
                break
            await asyncio.sleep(0.5)
        assert {k: v["status"] for k, v in summaries.items()} == dict.fromkeys(expected, "delivered"), summaries
        for notification_id, targets in expected.items():
            assert sorted(t["installationId"] for t in summaries[notification_id]["targets"]) == sorted(targets)

        received = [sandbox_client.channel(c["channelId"])["received"] for c in channels]
        duplicates = sum(r - 1 for r in received if r > 1)
        print(f"\nstorage outage: {len(expected)} notifications, received {sum(received)}, duplicates {duplicates}")
        assert all(r >= 1 for r in received), received
        assert duplicates <= 1, received
        assert (await client.get("/api/health")).status_code == 200
        # The installation the outage refused was not stored: registering it now creates it.
        again = await client.put("/api/installations/outage-new", json={"channelUri": channels[0]["channelUri"]})
        assert again.status_code == 201, again.text
