"""Sends through the app's HTTP function, end to end: single installations, and tags (fan-out).

Storage transactions are counted for everything from the POST to the last delivery message
deleted, including the host's own queue reads and deletes; function executions are counted as
the host would bill them (one per HTTP request, one per queue message). A single send is sent
by the accepting instance right after its answer, so it is finished when that instance's
background sends are (and any retries it queued are delivered).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.app import HostLikeDriver, call_http, queue_functions, resolve_setting, run_all_queues
from bench.counting import storage_counter
from bench.loops import TOAST
from bench.services import Services, process_cpu_seconds


@dataclass
class SendCost:
    """What sends cost, in total over `notifications` sends to `deliveries` channels."""

    notifications: int
    deliveries: int
    delivered: int
    seconds: float
    storage: Counter[str] = field(default_factory=Counter)
    executions: int = 0
    metrics: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    client_cpu: float = 0.0
    azurite_cpu: float = 0.0

    @property
    def storage_total(self) -> int:
        return sum(self.storage.values())

    def per_delivery(self, value: float) -> float:
        return value / self.deliveries if self.deliveries else 0.0


def toast_request(target: dict[str, object]) -> dict[str, object]:
    return {"type": "toast", "payload": TOAST.decode(), "target": target}


def _metrics_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _drivers(connection_string: str) -> list[HostLikeDriver]:
    return [
        HostLikeDriver(connection_string, resolve_setting(queue), function)
        for function, queue in sorted(queue_functions().items())
    ]


async def register(installation_id: str, channel_uri: str, tags: list[str] | None = None) -> None:
    status, body = await call_http(
        "put_installation",
        "PUT",
        f"installations/{installation_id}",
        {"channelUri": channel_uri, "tags": tags or []},
        installationId=installation_id,
    )
    if status not in (200, 201):
        raise RuntimeError(f"registering {installation_id} failed: {status} {body}")


async def single_sends(services: Services, channels: list[str], count: int) -> SendCost:
    """`count` single-installation sends, one after the other, each drained before the next."""
    from pushfuncs.context import finish_background_sends
    from pushfuncs.metrics import metrics

    ids = [f"single-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    for installation_id, channel in zip(ids, channels, strict=False):
        await register(installation_id, channel)
    drivers = _drivers(services.azurite.connection_string)
    # Warm the instance: its first send also reads the sending switch (then cached a minute).
    await call_http("send_notification", "POST", "notifications", toast_request({"installationId": ids[0]}))
    await finish_background_sends(300)
    before = metrics.snapshot()
    started = time.perf_counter()
    try:
        with storage_counter.phase() as ops:
            for installation_id in ids:
                status, body = await call_http(
                    "send_notification", "POST", "notifications", toast_request({"installationId": installation_id})
                )
                if status != 202:
                    raise RuntimeError(f"send failed: {status} {body}")
                await finish_background_sends(300)
                await run_all_queues(drivers, quiet=0.0)
    finally:
        for driver in drivers:
            await driver.close()
    seconds = time.perf_counter() - started
    return _single_sends_cost(count, seconds, ops, drivers, count, _metrics_delta(before, metrics.snapshot()))


async def single_sends_under_load(
    services: Services, channels: list[str], count: int, concurrency: int = 16
) -> SendCost:
    """`count` single-installation sends POSTed `concurrency` at a time while the host delivers:
    the instance time per send under a sustained load (what Flex Consumption bills)."""
    from pushfuncs.context import finish_background_sends
    from pushfuncs.metrics import metrics

    ids = [f"load-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    pending_registrations = iter(zip(ids, channels, strict=False))

    async def registrar() -> None:
        for installation_id, channel in pending_registrations:
            await register(installation_id, channel)

    await asyncio.gather(*(registrar() for _ in range(8)))
    drivers = _drivers(services.azurite.connection_string)
    before = metrics.snapshot()
    pending = iter(ids)

    async def poster() -> None:
        for installation_id in pending:
            status, body = await call_http(
                "send_notification", "POST", "notifications", toast_request({"installationId": installation_id})
            )
            if status != 202:
                raise RuntimeError(f"send failed: {status} {body}")

    try:
        with storage_counter.phase() as ops:
            started = time.perf_counter()
            await asyncio.gather(*(poster() for _ in range(concurrency)))
            await finish_background_sends(300)
            await run_all_queues(drivers, quiet=0.0)  # retries, if any were queued
            seconds = time.perf_counter() - started
    finally:
        for driver in drivers:
            await driver.close()
    return _single_sends_cost(count, seconds, ops, drivers, count, _metrics_delta(before, metrics.snapshot()))


def _single_sends_cost(
    count: int,
    seconds: float,
    ops: Counter[str],
    drivers: list[HostLikeDriver],
    http_executions: int,
    delta: dict[str, int],
) -> SendCost:
    """What `count` single sends cost: the POSTs' executions plus the queue messages the host ran."""
    return SendCost(
        notifications=count,
        deliveries=count,
        delivered=delta.get("wns.success", 0),
        seconds=seconds,
        storage=ops + sum((d.stats.host_operations() for d in drivers), Counter()),
        executions=http_executions + sum(d.stats.messages + d.stats.failures for d in drivers),
        metrics=delta,
        failures=sum(d.stats.failures for d in drivers),
    )


class _CapturingTable:
    """Stands in for a TableClient to learn the exact entities the app's stores would write."""

    def __init__(self) -> None:
        self.entities: list[dict[str, Any]] = []

    async def upsert_entity(self, entity: dict[str, Any], **_: Any) -> None:
        self.entities.append(dict(entity))

    async def create_entity(self, entity: dict[str, Any], **_: Any) -> None:
        self.entities.append(dict(entity))


async def seed_tag(tag: str, channels: list[str], count: int) -> None:
    """Register `count` installations under `tag` in the tag index (see `seed_index`)."""
    from pushfuncs.storage.index import tag_key

    await seed_index(channels, count, lambda installation_id: tag_key(tag, installation_id)[0], [tag])


async def seed_everyone(channels: list[str], count: int) -> None:
    """Register `count` installations in the broadcast index (every live installation)."""
    from pushfuncs.storage.index import ALL_SHARDS, all_partition, shard_of

    await seed_index(channels, count, lambda installation_id: all_partition(shard_of(installation_id, ALL_SHARDS)))


async def seed_index(
    channels: list[str], count: int, partition_of: Callable[[str], str], tags: list[str] | None = None
) -> None:
    """Register `count` installations in one index, fast (entity-group batches).

    The rows are built by the app's own IndexStore (captured, then written 100 per transaction).
    Only that index is written: a fan-out reads nothing else. This is set-up, not measured.
    """
    from pushfuncs.context import get_context
    from pushfuncs.storage.index import IndexStore
    from pushfuncs.storage.installations import Installation

    ctx = await get_context()
    capture = _CapturingTable()
    index = IndexStore(capture)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    prefix = uuid.uuid4().hex[:8]
    for i in range(count):
        installation = Installation(
            installation_id=f"{prefix}-{i:07d}",
            channel_uri=channels[i % len(channels)],
            user_id=None,
            tags=list(tags or []),
            expires_at=now + timedelta(days=29),
            created_at=now,
            updated_at=now,
        )
        await index.put(installation, [partition_of(installation.installation_id)])
    by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entity in capture.entities:
        by_partition[str(entity["PartitionKey"])].append(entity)
    chunks = [rows[i : i + 100] for rows in by_partition.values() for i in range(0, len(rows), 100)]
    pending = iter(chunks)

    async def worker() -> None:
        for chunk in pending:
            await ctx.index_table.submit_transaction([("upsert", row) for row in chunk])

    await asyncio.gather(*(worker() for _ in range(8)))


@dataclass
class GrowthResult:
    installations: int
    cost: SendCost
    setup_seconds: float

    @property
    def us_per_installation(self) -> float:
        return self.cost.seconds / self.installations * 1e6


async def tag_send(services: Services, channels: list[str], count: int) -> GrowthResult:
    """One send to a tag of `count` installations: POST, fan-out, deliveries, all to completion."""
    tag = f"growth-{count}-{uuid.uuid4().hex[:6]}"
    return await _send_to_index(services, count, seed_tag(tag, channels, count), {"tag": tag})


async def broadcast_send(services: Services, channels: list[str], count: int) -> GrowthResult:
    """One broadcast (`"all": true`) to an audience of `count` installations, end to end."""
    return await _send_to_index(services, count, seed_everyone(channels, count), {"all": True})


async def _send_to_index(
    services: Services, count: int, seed: Awaitable[None], target: dict[str, object]
) -> GrowthResult:
    from pushfuncs.metrics import metrics

    setup_started = time.perf_counter()
    await seed
    setup_seconds = time.perf_counter() - setup_started
    drivers = _drivers(services.azurite.connection_string)
    before = metrics.snapshot()
    cpu_before, azurite_before = time.process_time(), process_cpu_seconds(services.azurite.process.pid)
    try:
        with storage_counter.phase() as ops:
            started = time.perf_counter()
            status, body = await call_http("send_notification", "POST", "notifications", toast_request(target))
            if status != 202:
                raise RuntimeError(f"send to {target} failed: {status} {body}")
            await run_all_queues(drivers, timeout=900.0, quiet=0.3)
            seconds = max(d.stats.last_delete or started for d in drivers) - started
        client_cpu = time.process_time() - cpu_before
        azurite_cpu = process_cpu_seconds(services.azurite.process.pid) - azurite_before
    finally:
        for driver in drivers:
            await driver.close()
    delta = _metrics_delta(before, metrics.snapshot())
    cost = SendCost(
        client_cpu=client_cpu,
        azurite_cpu=azurite_cpu,
        notifications=1,
        deliveries=count,
        delivered=delta.get("wns.success", 0),
        seconds=seconds,
        storage=ops + sum((d.stats.host_operations() for d in drivers), Counter()),
        executions=1 + sum(d.stats.messages + d.stats.failures for d in drivers),
        metrics=delta,
        failures=sum(d.stats.failures for d in drivers),
    )
    return GrowthResult(installations=count, cost=cost, setup_seconds=setup_seconds)


def tag_fanout_available() -> bool:
    """Whether the app can send to a tag (fan-out), judged by its own request parser."""
    try:
        from pushfuncs.validation import parse_send_request

        parse_send_request(json.dumps(toast_request({"tag": "probe"})).encode())
    except Exception:
        return False
    return any("FANOUT" in q.upper() for q in queue_functions().values()) or bool(os.environ.get("FANOUT_QUEUE"))
