"""Registry integrity under concurrency: many clients racing PUT, DELETE, 404/410 removal and the
expiry sweep on a few installations, seeded; then the invariant of
pushfuncs/services/registration.py is checked over the stored state, and every send path is
checked against what GET says.

`RACE_ROUNDS` / `RACE_CLIENTS` / `RACE_SEED` make it larger (`make race` runs a long one).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from pushfuncs.context import get_context
from pushfuncs.services.registration import register_installation, remove_installation
from pushfuncs.services.sweep import ExpirySweeper
from pushfuncs.validation import InstallationRequest
from sandbox import SandboxClient
from tests.harness import call_http
from tests.integration.test_targeting import drain_all, received_counts, send
from tests.registry_checks import TAGS, USERS, invariant_violations, pending_markers, with_jitter

SEED = int(os.environ.get("RACE_SEED", "20261130"))
ROUNDS = int(os.environ.get("RACE_ROUNDS", "8"))
CLIENTS = int(os.environ.get("RACE_CLIENTS", "12"))
INSTALLATIONS = 3
TOAST = "<toast><visual><binding template='ToastGeneric'><text>{}</text></binding></visual></toast>"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Race:
    """One round: `CLIENTS` random operations on `INSTALLATIONS` ids, all started at once."""

    def __init__(self, rng: random.Random, sandbox_client: SandboxClient, prefix: str) -> None:
        self.rng = rng
        self.sandbox = sandbox_client
        self.ids = [f"{prefix}-dev{i}" for i in range(INSTALLATIONS)]
        # Each PUT gets a channel of its own, so a delivery tells which registration it reached.
        self.channels: dict[str, list[str]] = {i: [] for i in self.ids}
        self.kinds: Counter[str] = Counter()

    def new_channel(self, installation_id: str) -> str:
        channel = self.sandbox.create_channel()["channelUri"]
        self.channels[installation_id].append(channel)
        return channel

    def operation(self, now: datetime) -> Any:
        ctx_ops = ("put_http", "put", "delete_http", "gone", "sweep", "put")
        kind = self.rng.choice(ctx_ops)
        self.kinds[kind] += 1
        installation_id = self.rng.choice(self.ids)
        tags = sorted(self.rng.sample(TAGS, self.rng.randint(0, len(TAGS))))
        user = self.rng.choice((*USERS, None))
        expires = now + timedelta(days=self.rng.choice((1, 2, 29)))
        if kind in ("put", "put_http"):
            channel = self.new_channel(installation_id)
            if kind == "put_http":
                body = {"channelUri": channel, "tags": tags, "userId": user, "expiresAt": _iso(expires)}
                return self._http("put_installation", "PUT", installation_id, body)
            return self._put(installation_id, InstallationRequest(channel, user, tags, expires), now)
        if kind == "delete_http":
            return self._http("delete_installation", "DELETE", installation_id, None)
        if kind == "gone":
            # What delivery does on a 404/410: remove only if that channel is still the stored one.
            known = self.channels[installation_id] or ["https://db5.notify.windows.com/?token=none"]
            return self._gone(installation_id, self.rng.choice(known))
        # The sweep, as if run two days later: removes those registered for one or two days.
        return self._sweep(now + timedelta(days=2, hours=1))

    async def _http(self, name: str, method: str, installation_id: str, body: object) -> None:
        response = await call_http(
            name, method, f"installations/{installation_id}", body, installationId=installation_id
        )
        assert response.status in (200, 201, 204), (name, response.status, response.body)

    async def _put(self, installation_id: str, request: InstallationRequest, now: datetime) -> None:
        ctx = await get_context()
        await register_installation(ctx.installations, ctx.index, installation_id, request, now)

    async def _gone(self, installation_id: str, channel: str) -> None:
        ctx = await get_context()
        await remove_installation(ctx.installations, ctx.index, installation_id, only_if_channel=channel)

    async def _sweep(self, at: datetime) -> None:
        ctx = await get_context()
        await ExpirySweeper(ctx.installations, ctx.index, ctx.index_table).sweep(at)


async def test_any_interleaving_leaves_the_index_equal_to_the_registry(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    ctx = await get_context()
    rng = random.Random(SEED)
    with_jitter(ctx, random.Random(SEED))
    now = datetime.now(UTC)
    kinds: Counter[str] = Counter()
    registered = 0
    for round_number in range(ROUNDS):
        race = Race(rng, sandbox_client, f"r{round_number}")
        operations = [race.operation(now) for _ in range(CLIENTS)]
        await asyncio.gather(*operations)
        problems = await invariant_violations(ctx.installations, ctx.index_table, race.ids)
        assert problems == [], f"seed {SEED}, round {round_number}: {problems}"
        kinds += race.kinds
        registered += sum([await ctx.installations.get(i) is not None for i in race.ids])
    assert await pending_markers(ctx.index_table) == []
    print(
        f"\nregistry race (seed {SEED}): {ROUNDS} rounds x {CLIENTS} concurrent operations on {INSTALLATIONS}"
        f" installations: {dict(sorted(kinds.items()))}; {registered} of {ROUNDS * INSTALLATIONS} registered at"
        " the end of their round; index equal to the registry after every round; no marker left"
    )


async def test_after_a_race_every_send_path_reaches_exactly_what_get_shows(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    ctx = await get_context()
    rng = random.Random(SEED + 1)
    with_jitter(ctx, random.Random(SEED + 1))
    now = datetime.now(UTC)
    race = Race(rng, sandbox_client, "send")
    await asyncio.gather(*(race.operation(now) for _ in range(CLIENTS)))

    registered: dict[str, dict[str, Any]] = {}
    for installation_id in race.ids:
        response = await call_http(
            "get_installation", "GET", f"installations/{installation_id}", installationId=installation_id
        )
        assert response.status in (200, 404)
        if response.status == 200:
            registered[installation_id] = response.body

    def channels_of(selected: list[str]) -> set[str]:
        return {registered[i]["channelUri"] for i in selected}

    cases: list[tuple[dict[str, object], set[str]]] = [
        ({"all": True}, channels_of([i for i in registered if i.startswith("send-")])),
        ({"installationIds": race.ids}, channels_of(list(registered))),
    ]
    for tag in TAGS:
        cases.append(({"tag": tag}, channels_of([i for i, b in registered.items() if tag in b["tags"]])))
    expression = f"{TAGS[0]} && !{TAGS[1]}"
    cases.append(
        (
            {"tagExpression": expression},
            channels_of([i for i, b in registered.items() if TAGS[0] in b["tags"] and TAGS[1] not in b["tags"]]),
        )
    )
    for user in USERS:
        cases.append(({"userId": user}, channels_of([i for i, b in registered.items() if b["userId"] == user])))
    for installation_id in registered:
        cases.append(({"installationId": installation_id}, channels_of([installation_id])))

    every_channel = {c for cs in race.channels.values() for c in cs}
    for target, expected in cases:
        before = received_counts(sandbox_client)
        code, body = await send({"type": "toast", "payload": TOAST.format("x"), "target": target})
        assert code == 202, body
        await drain_all(app_env)
        after = received_counts(sandbox_client)
        reached = {c for c in every_channel if after.get(c, 0) > before.get(c, 0)}
        assert reached == expected, f"target {target}: reached {len(reached)}, expected {len(expected)}"
        assert all(after.get(c, 0) - before.get(c, 0) == 1 for c in reached), f"target {target}: a duplicate"
    assert await invariant_violations(ctx.installations, ctx.index_table, race.ids) == []
