"""Registry integrity under partial failure: storage fails between any two writes of a PUT, a
DELETE or a 404/410 removal; then either the request is retried or the sweep's repair runs,
and the invariant of pushfuncs/services/registration.py holds again. Every fault point is tried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from pushfuncs.context import get_context
from pushfuncs.services.registration import register_installation, remove_installation, repair_pending
from pushfuncs.storage.index import IndexStore
from pushfuncs.storage.installations import InstallationStore
from pushfuncs.validation import InstallationRequest
from sandbox import SandboxClient
from tests.registry_checks import FaultyTable, InjectedFault, invariant_violations, pending_markers

Operation = Callable[[InstallationStore, IndexStore], Awaitable[object]]


def _request(channel: str, tags: list[str], user: str | None, days: int) -> InstallationRequest:
    return InstallationRequest(channel, user, tags, datetime.now(UTC) + timedelta(days=days))


async def _writes_of(operation: Operation, installation_id: str, setup: Operation) -> int:
    """How many storage writes `operation` makes on a fresh copy of the state (no fault)."""
    ctx = await get_context()
    await setup(ctx.installations, ctx.index)
    counter = [0]
    store = InstallationStore(FaultyTable(ctx.installations._table, counter, None))
    index = IndexStore(FaultyTable(ctx.index_table, counter, None))
    await operation(store, index)
    return counter[0]


def _scenarios(channels: list[str]) -> dict[str, tuple[Operation, Operation]]:
    """name -> (set-up, operation that may be cut short), each on installation "dev"."""
    first = _request(channels[0], ["news", "sports"], "alice", 2)
    second = _request(channels[1], ["alerts"], "bob", 29)

    async def nothing(store: InstallationStore, index: IndexStore) -> None:
        return None

    async def registered(store: InstallationStore, index: IndexStore) -> None:
        await register_installation(store, index, "dev", first, datetime.now(UTC))

    async def put_first(store: InstallationStore, index: IndexStore) -> object:
        return await register_installation(store, index, "dev", first, datetime.now(UTC))

    async def put_second(store: InstallationStore, index: IndexStore) -> object:
        return await register_installation(store, index, "dev", second, datetime.now(UTC))

    async def delete(store: InstallationStore, index: IndexStore) -> object:
        return await remove_installation(store, index, "dev")

    async def channel_gone(store: InstallationStore, index: IndexStore) -> object:
        return await remove_installation(store, index, "dev", only_if_channel=channels[0])

    return {
        "create": (nothing, put_first),
        "re-register with other tags, user, channel and expiry": (registered, put_second),
        "delete": (registered, delete),
        "404/410 removal": (registered, channel_gone),
    }


@pytest.mark.parametrize("recovery", ["retry", "repair"])
@pytest.mark.parametrize(
    "scenario",
    ["create", "re-register with other tags, user, channel and expiry", "delete", "404/410 removal"],
)
async def test_a_write_cut_short_at_any_point_converges(
    app_env: dict[str, str], sandbox_client: SandboxClient, scenario: str, recovery: str
) -> None:
    ctx = await get_context()
    channels = [sandbox_client.create_channel()["channelUri"] for _ in range(2)]
    setup, operation = _scenarios(channels)[scenario]
    total = await _writes_of(operation, "dev", setup)
    assert total >= 3
    for fail_at in range(1, total + 1):
        # A fresh state for each fault point: clear, then set up without faults.
        await remove_installation(ctx.installations, ctx.index, "dev")
        await setup(ctx.installations, ctx.index)
        counter = [0]
        store = InstallationStore(FaultyTable(ctx.installations._table, counter, fail_at))
        index = IndexStore(FaultyTable(ctx.index_table, counter, fail_at))
        with pytest.raises(InjectedFault):
            await operation(store, index)
        if recovery == "retry":
            await operation(ctx.installations, ctx.index)
        else:
            # Nobody retries: the sweep's repair finishes what the dead operation left.
            await repair_pending(ctx.installations, ctx.index, datetime.now(UTC) + timedelta(minutes=3))
        problems = await invariant_violations(ctx.installations, ctx.index_table, ["dev"])
        assert problems == [], f"{scenario}, fault at write {fail_at} of {total}, then {recovery}: {problems}"
        # The dead operation's marker stays until the repair runs; then nothing is left over.
        await repair_pending(ctx.installations, ctx.index, datetime.now(UTC) + timedelta(minutes=3))
        assert await pending_markers(ctx.index_table) == []
        assert await invariant_violations(ctx.installations, ctx.index_table, ["dev"]) == []
    if scenario in ("delete", "404/410 removal"):
        assert await ctx.installations.get("dev") is None


async def test_a_half_finished_delete_sends_nothing_and_a_retried_delete_cleans_up(
    app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    """The issue's case: the registry row gone (here: a tombstone), index rows left behind."""
    from tests.integration.test_targeting import drain_all, received_counts, send

    ctx = await get_context()
    channel = sandbox_client.create_channel()["channelUri"]
    await register_installation(
        ctx.installations, ctx.index, "half", _request(channel, ["t"], "u", 5), datetime.now(UTC)
    )
    counter = [0]
    # Write 1: the marker; write 2: the tombstone; write 3: the first index row deletion fails.
    store = InstallationStore(FaultyTable(ctx.installations._table, counter, 3))
    index = IndexStore(FaultyTable(ctx.index_table, counter, 3))
    with pytest.raises(InjectedFault):
        await remove_installation(store, index, "half")
    # GET already says it is gone ...
    assert await ctx.installations.get("half") is None
    # ... and a retried DELETE finishes the job.
    await remove_installation(ctx.installations, ctx.index, "half")
    assert await invariant_violations(ctx.installations, ctx.index_table, ["half"]) == []
    before = received_counts(sandbox_client).get(channel, 0)
    for target in ({"tag": "t"}, {"userId": "u"}, {"all": True}):
        code, _ = await send({"type": "raw", "payload": "x", "target": target})
        assert code == 202
    await drain_all(app_env)
    assert received_counts(sandbox_client).get(channel, 0) == before
