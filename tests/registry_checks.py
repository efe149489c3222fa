"""Checks of the registry invariant (pushfuncs/services/registration.py) over the stored state,
and a table client that fails on a chosen write, for the concurrency and fault tests."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pushfuncs.storage.index import (
    ALL_SHARDS,
    EXPIRY_SHARDS,
    PENDING_SHARDS,
    IndexStore,
    all_partition,
    expiry_partition,
    index_partitions,
    pending_partition,
    tag_partitions,
    user_partition,
)
from pushfuncs.storage.installations import InstallationStore
from pushfuncs.validation import InstallationRequest

TAGS = ("news", "sports", "alerts")
USERS = ("alice", "bob")


def random_request(rng: random.Random, channels: list[str], now: datetime) -> InstallationRequest:
    return InstallationRequest(
        channel_uri=rng.choice(channels),
        user_id=rng.choice((*USERS, None)),
        tags=sorted(rng.sample(TAGS, rng.randint(0, len(TAGS)))),
        templates={},
        expires_at=now + timedelta(days=rng.choice((1, 2, 29))),
    )


def candidate_partitions(now: datetime, days: Iterable[int] = range(-3, 31)) -> list[str]:
    """Every index partition a test installation could have a row in."""
    partitions = [all_partition(shard) for shard in range(ALL_SHARDS)]
    partitions += [user_partition(user) for user in USERS]
    partitions += [p for tag in TAGS for p in tag_partitions(tag)]
    for day in days:
        stamp = (now + timedelta(days=day)).strftime("%Y%m%d")
        partitions += [expiry_partition(stamp, shard) for shard in range(EXPIRY_SHARDS)]
    return partitions


async def index_rows_of(index_table: Any, installation_ids: list[str]) -> dict[str, dict[str, dict[str, object]]]:
    """Installation id -> partition -> row, for every index row of these installations."""
    found: dict[str, dict[str, dict[str, object]]] = {i: {} for i in installation_ids}
    async for row in index_table.list_entities():
        rk = str(row["RowKey"])
        if rk in found and not str(row["PartitionKey"]).startswith("pending-"):
            found[rk][str(row["PartitionKey"])] = dict(row)
    return found


async def invariant_violations(store: InstallationStore, index_table: Any, installation_ids: list[str]) -> list[str]:
    """What breaks "the index is exactly the registry" for these installations (empty: none)."""
    problems: list[str] = []
    rows = await index_rows_of(index_table, installation_ids)
    for installation_id in installation_ids:
        entity = await store.read(installation_id)
        if entity is not None and entity.deleted:
            problems.append(f"{installation_id}: a tombstone was left behind")
        live = None if entity is None or entity.deleted else entity
        wanted = index_partitions(live) if live is not None else frozenset()
        have = set(rows[installation_id])
        if have != wanted:
            problems.append(f"{installation_id}: index rows {sorted(have)} but the registry wants {sorted(wanted)}")
        if live is None:
            continue
        if live.index_keys != wanted:
            problems.append(f"{installation_id}: IndexKeys {sorted(live.index_keys)} not settled to {sorted(wanted)}")
        for partition, row in rows[installation_id].items():
            if row.get("ChannelUri") != live.channel_uri:
                problems.append(f"{installation_id}: row in {partition} has another channel than the registry")
            if sorted(json.loads(str(row.get("Tags") or "[]"))) != sorted(live.tags):
                problems.append(f"{installation_id}: row in {partition} has other tags than the registry")
    return problems


async def pending_markers(index_table: Any) -> list[str]:
    markers = []
    for shard in range(PENDING_SHARDS):
        async for row in index_table.query_entities("PartitionKey eq @pk", parameters={"pk": pending_partition(shard)}):
            markers.append(str(row["RowKey"]))
    return markers


class InjectedFault(RuntimeError):
    """Storage failed a write on purpose (a crash or an outage between two writes)."""


WRITES = ("create_entity", "update_entity", "upsert_entity", "delete_entity", "submit_transaction")


class FaultyTable:
    """A TableClient stand-in that forwards everything and fails the `fail_at`-th write (shared
    counter across tables), so a test can stop an operation between any two of its writes."""

    def __init__(self, table: Any, counter: list[int], fail_at: int | None) -> None:
        self._table = table
        self._counter = counter
        self._fail_at = fail_at

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._table, name)
        if name not in WRITES:
            return attribute

        async def write(*args: Any, **kwargs: Any) -> Any:
            self._counter[0] += 1
            if self._fail_at is not None and self._counter[0] == self._fail_at:
                raise InjectedFault(f"write {self._counter[0]} ({name}) failed")
            return await attribute(*args, **kwargs)

        return write


class JitterTable:
    """A TableClient stand-in that delays each read and write by a seeded random few
    milliseconds, and one call in twenty by up to 150 ms (the long tail of a real network),
    so concurrent operations interleave in many orders, reproducibly."""

    def __init__(self, table: Any, rng: random.Random, max_delay: float = 0.008) -> None:
        self._table = table
        self._rng = rng
        self._max_delay = max_delay

    def _delay(self) -> float:
        delay = self._rng.random() * self._max_delay
        if self._rng.random() < 0.05:
            delay += self._rng.uniform(0.03, 0.15)
        return delay

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._table, name)
        if name not in (*WRITES, "get_entity"):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(self._delay())
            result = await attribute(*args, **kwargs)
            await asyncio.sleep(self._delay())
            return result

        return call


def with_jitter(ctx: Any, rng: random.Random) -> None:
    """Route the context's registry and index through `JitterTable`s."""
    ctx.installations = InstallationStore(JitterTable(ctx.installations._table, rng))
    ctx.index_table = JitterTable(ctx.index_table, rng)
    ctx.index = IndexStore(ctx.index_table)
