"""The same races over real HTTP, through the local Functions host (its routing, keys, queue
listeners): concurrent PUT/DELETE of a few installations, then concurrent sends with one
Idempotency-Key; the registry invariant holds and each device gets the notification once."""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pushfuncs.context import get_context
from sandbox import SandboxClient
from tests.integration.test_targeting import received_counts
from tests.registry_checks import TAGS, invariant_violations, pending_markers
from tests.reliability.support import local_host_client

SEED = int(os.environ.get("RACE_SEED", "20261130"))
CLIENTS = int(os.environ.get("RACE_CLIENTS", "12"))


async def test_concurrent_http_clients_keep_the_registry_and_idempotency_invariants(
    app_env: dict[str, str], sandbox_client: SandboxClient, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    ids = ["http-0", "http-1"]
    async with local_host_client(app_env, tmp_path) as client:

        async def put(installation_id: str) -> int:
            body = {
                "channelUri": sandbox_client.create_channel()["channelUri"],
                "tags": sorted(rng.sample(TAGS, rng.randint(0, len(TAGS)))),
                "expiresAt": (datetime.now(UTC) + timedelta(days=rng.choice((1, 29)))).isoformat(),
            }
            return (await client.put(f"/installations/{installation_id}", json=body)).status_code

        async def delete(installation_id: str) -> int:
            return (await client.delete(f"/installations/{installation_id}")).status_code

        for _ in range(4):
            operations = [rng.choice((put, put, delete))(rng.choice(ids)) for _ in range(CLIENTS)]
            assert set(await asyncio.gather(*operations)) <= {200, 201, 204}
            ctx = await get_context()
            assert await invariant_violations(ctx.installations, ctx.index_table, ids) == []
        assert await pending_markers(ctx.index_table) == []

        # Now one Idempotency-Key, eight requests at once, to every installation left.
        for installation_id in ids:
            assert await put(installation_id) in (200, 201)
        listed = [(await client.get(f"/installations/{i}")).json()["channelUri"] for i in ids]
        before = received_counts(sandbox_client)
        body = {"type": "raw", "payload": "once", "target": {"installationIds": ids}}
        answers = await asyncio.gather(
            *(client.post("/notifications", json=body, headers={"Idempotency-Key": "over-http"}) for _ in range(8))
        )
        assert {a.status_code for a in answers} == {202}
        [notification_id] = {a.json()["id"] for a in answers}
        deadline = time.monotonic() + 60
        while (status := (await client.get(f"/notifications/{notification_id}")).json())["status"] != "delivered":
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.2)
        after = received_counts(sandbox_client)
        assert [after[c] - before.get(c, 0) for c in listed] == [1, 1]
