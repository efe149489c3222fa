"""The critical path of a broadcast, in sequential storage round trips, counted exactly.

The app's own FanoutService runs against in-memory tables and queues in which every call takes
one round trip of virtual time, on an event loop whose clock jumps to the next timer instead of
waiting. A simulated host starts each fan-out message one round trip after it is queued (its
dequeue). The virtual time from the first fan-out message's dequeue to the last delivery batch
queued is then the number of storage round trips on the critical path, independent of CPU
speed: multiply by a real round trip (about 10-20 ms in one Azure region) for a time.

    python -m bench.critical_path 1000000
"""

from __future__ import annotations

import asyncio
import bisect
import re
import selectors
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

ROUND_TRIP = 1.0  # virtual seconds per storage call


class _InstantSelector(selectors.DefaultSelector):
    """No real I/O happens on this loop: waiting for `timeout` just advances the clock."""

    def __init__(self, clock: VirtualClockLoop) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout:
            self._clock.now += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_InstantSelector(self))

    def time(self) -> float:
        return self.now


async def _round_trip() -> None:
    await asyncio.sleep(ROUND_TRIP)


class MemoryTable:
    """The part of TableClient the fan-out uses, one round trip per call."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self._sorted: dict[str, list[str]] = {}
        self.calls = 0

    def load(self, partition: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.rows[partition][row["RowKey"]] = row
        self._sorted[partition] = sorted(self.rows[partition])

    async def get_entity(self, pk: str, rk: str, **_: Any) -> dict[str, Any]:
        from azure.core.exceptions import ResourceNotFoundError

        self.calls += 1
        await _round_trip()
        if rk not in self.rows[pk]:
            raise ResourceNotFoundError("not found")
        return dict(self.rows[pk][rk])

    async def upsert_entity(self, entity: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.calls += 1
        await _round_trip()
        self.rows[entity["PartitionKey"]].setdefault(entity["RowKey"], {}).update(entity)
        return {"etag": "x"}

    update_entity = upsert_entity
    create_entity = upsert_entity

    async def submit_transaction(self, operations: list[tuple[str, dict[str, Any]]], **_: Any) -> list[Any]:
        self.calls += 1
        await _round_trip()
        for _, entity in operations:
            self.rows[entity["PartitionKey"]].setdefault(entity["RowKey"], {}).update(entity)
        return []

    def query_rows(self, filter: str, select: Any = None, top: int = 1000) -> Any:
        """`IndexStore`'s page query (`pushfuncs.storage.plain_query.query_rows`), as plain rows."""
        match = re.fullmatch(r"PartitionKey eq '(.*)' and RowKey gt '(.*)'", filter)
        assert match is not None, filter
        partition, after = (value.replace("''", "'") for value in match.groups())
        keys = self._sorted.get(partition, [])
        start = bisect.bisect_right(keys, after)
        rows = self.rows[partition]
        table = self

        async def pages() -> Any:
            # One round trip per page of `top` rows, as the service pages.
            for offset in range(start, len(keys), top):
                table.calls += 1
                await _round_trip()
                for key in keys[offset : offset + top]:
                    yield rows[key]

        return pages()


@dataclass
class Run:
    installations: int
    round_trips: float
    fanout_messages: int
    delivery_batches: int
    storage_calls: int


class _Queue:
    def __init__(self, on_message: Any) -> None:
        self._on_message = on_message
        self.sent = 0

    async def send(self, message: dict[str, Any], delay_seconds: float = 0) -> None:
        self.sent += 1
        await _round_trip()
        self._on_message(message)


async def _broadcast(installations: int) -> Run:
    from pushfuncs.services.fanout import FanoutService
    from pushfuncs.services.messages import FanoutMessage
    from pushfuncs.storage.index import ALL_SHARDS, IndexStore, all_partition, shard_of
    from pushfuncs.storage.notifications import NotificationStore
    from pushfuncs.wns import NotificationType, WnsOptions

    loop = asyncio.get_running_loop()
    table = MemoryTable()
    expires = datetime.now(UTC) + timedelta(days=20)
    by_shard: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i in range(installations):
        installation_id = f"device-{i:08d}"
        by_shard[shard_of(installation_id, ALL_SHARDS)].append(
            {
                "RowKey": installation_id,
                "ChannelUri": f"https://db5.notify.windows.com/?token=T{i}",
                "ExpiresAt": expires.isoformat(),
            }
        )
    for shard, rows in by_shard.items():
        table.load(all_partition(shard), rows)
    table.rows["n1"]["summary"] = {"PartitionKey": "n1", "RowKey": "summary"}

    pending: set[asyncio.Task[None]] = set()
    last_batch = [0.0]
    fanout_messages = [0]

    class Context:
        notifications = NotificationStore(table)  # type: ignore[arg-type]
        index = IndexStore(table, table.query_rows)  # type: ignore[arg-type]
        fanout_queue = _Queue(lambda message: deliver_later(message))
        delivery_queue = _Queue(lambda message: last_batch.__setitem__(0, loop.time()))

    service = FanoutService(Context())  # type: ignore[arg-type]

    def deliver_later(message: dict[str, Any]) -> None:
        import json

        async def dequeue_then_process() -> None:
            await _round_trip()  # the host's dequeue
            fanout_messages[0] += 1
            await service.process(json.dumps(message).encode())

        task = loop.create_task(dequeue_then_process())
        pending.add(task)
        task.add_done_callback(pending.discard)

    first = FanoutMessage("n1", NotificationType.RAW, b"x", WnsOptions(), {"all": True})
    started = loop.time()
    deliver_later(first.to_dict())
    while pending:
        await asyncio.gather(*list(pending))
    return Run(
        installations=installations,
        round_trips=(last_batch[0] - started) / ROUND_TRIP,
        fanout_messages=fanout_messages[0],
        delivery_batches=Context.delivery_queue.sent,
        storage_calls=table.calls,
    )


def count_broadcast(installations: int) -> Run:
    """Run a broadcast to `installations` devices on the virtual clock."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(_broadcast(installations))
    finally:
        loop.close()


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [100_000, 1_000_000]
    print("| installations | round trips on the critical path | fan-out messages | delivery batches | storage calls |")
    print("|---:|---:|---:|---:|---:|")
    for size in sizes:
        run = count_broadcast(size)
        print(
            f"| {run.installations:,} | {run.round_trips:.0f} | {run.fanout_messages:,} | {run.delivery_batches:,}"
            f" | {run.storage_calls:,} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
