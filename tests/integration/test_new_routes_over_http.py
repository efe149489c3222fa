"""The Notification Hubs-parity routes over real HTTP through the local Functions host: PATCH
(also concurrent), listing and counting the audience, cancelling a scheduled send, paged
per-target status and the removed-channels feed."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox import SandboxClient
from tests.reliability.support import local_host_client


async def _until(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    return result


async def test_each_new_route_works_through_the_local_host(
    app_env: dict[str, str], sandbox_client: SandboxClient, tmp_path: Path
) -> None:
    async with local_host_client(app_env, tmp_path) as client:
        channels = {f"nr-{i}": sandbox_client.create_channel() for i in range(3)}
        for installation_id, channel in channels.items():
            body = {"channelUri": channel["channelUri"], "tags": ["base"], "userId": "ada"}
            assert (await client.put(f"/installations/{installation_id}", json=body)).status_code == 201

        # PATCH, eight at once on one installation: every tag kept.
        patches = [
            client.patch(
                "/installations/nr-0",
                json=[{"op": "add", "path": "/tags/-", "value": f"t{i}"}],
                headers={"content-type": "application/json-patch+json"},
            )
            for i in range(8)
        ]
        assert {r.status_code for r in await asyncio.gather(*patches)} == {200}
        tags = (await client.get("/installations/nr-0")).json()["tags"]
        assert sorted(tags) == sorted(["base", *(f"t{i}" for i in range(8))])

        # The audience: listed by tag and by user, counted.
        listed = (await client.get("/installations", params={"tag": "base"})).json()
        assert sorted(i["installationId"] for i in listed["installations"]) == sorted(channels)
        by_user = (await client.get("/installations", params={"userId": "ada"})).json()
        assert len(by_user["installations"]) == 3
        count = (await client.get("/audience/count", params={"tagExpression": "base && t3"})).json()
        assert count["count"] == 1

        # A scheduled send cancelled before it fires.
        send_at = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
        scheduled = await client.post(
            "/notifications",
            json={"type": "raw", "payload": "later", "target": {"tag": "base"}, "sendAt": send_at},
        )
        assert scheduled.status_code == 202
        cancelled = await client.delete(f"/notifications/{scheduled.json()['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

        # Per-target results in pages.
        sent = await client.post("/notifications", json={"type": "raw", "payload": "now", "target": {"tag": "base"}})
        notification = f"/notifications/{sent.json()['id']}"

        async def delivered() -> Any:
            body = (await client.get(notification)).json()
            return body if body["status"] == "delivered" else None

        await _until(delivered)
        first = (await client.get(notification, params={"limit": 2})).json()
        assert len(first["targets"]) == 2 and first.get("continuationToken")
        rest = (
            await client.get(notification, params={"limit": 2, "continuationToken": first["continuationToken"]})
        ).json()
        seen = [t["installationId"] for t in first["targets"] + rest["targets"]]
        assert sorted(seen) == sorted(channels)

        # The feed of removed channels: WNS answers 410 for an expired channel.
        sandbox_client.expire_channel(channels["nr-2"]["channelId"])
        gone = await client.post(
            "/notifications", json={"type": "raw", "payload": "x", "target": {"installationId": "nr-2"}}
        )
        assert gone.status_code == 202

        async def fed() -> Any:
            feed = (await client.get("/removed-channels")).json()
            return [r for r in feed["removedChannels"] if r["installationId"] == "nr-2"]

        [row] = await _until(fed)
        assert row["channelUri"] == channels["nr-2"]["channelUri"] and row["wns"]["statusCode"] in (404, 410)
        assert row["notificationId"] == gone.json()["id"]
        assert (await client.get("/installations/nr-2")).status_code == 404
