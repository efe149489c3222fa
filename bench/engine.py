"""Our delivery engine end to end: queue message in, WNS requests, outcomes recorded, message deleted.

Delivery messages carry up to 100 channels of one notification, as the fan-out writes them
(claiming their targets first). They are put on Azurite's delivery queue through the app's own
queue adapter (base64, as the host expects), then the decorated `deliver_notifications`
function is driven with the host's concurrency. Deliveries per second are counted from the
first dequeue to the last delete.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from bench.app import run_host_on_thread
from bench.counting import storage_counter
from bench.loops import TOAST
from bench.services import Services, process_cpu_seconds

BATCH = 100


@dataclass
class EngineResult:
    deliveries: int
    messages: int
    seconds: float
    delivered: int
    sandbox_accepted: int
    client_cpu: float  # the whole process: the worker's loop and the host stand-in's thread
    host_cpu: float  # the host stand-in's thread alone (receiving and deleting queue messages)
    server_cpu: float
    azurite_cpu: float
    enqueue_ops: Counter[str] = field(default_factory=Counter)
    deliver_ops: Counter[str] = field(default_factory=Counter)
    metrics: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    @property
    def worker_cpu(self) -> float:
        """CPU seconds of the worker's side: what runs on the app's loop (the Functions worker's)."""
        return self.client_cpu - self.host_cpu


def delivery_messages(
    channels: list[str], count: int, batch: int = BATCH, claim: bool = True
) -> list[dict[str, object]]:
    """Queue messages for `count` deliveries of one toast, `batch` channels per message."""
    from pushfuncs.services.messages import DeliveryMessage, DeliveryTarget
    from pushfuncs.wns import NotificationType, WnsOptions

    notification_id = uuid.uuid4().hex
    messages = []
    for start in range(0, count, batch):
        stop = min(count, start + batch)
        targets = tuple(DeliveryTarget(f"inst-{i:07d}", channels[i % len(channels)]) for i in range(start, stop))
        fields: dict[str, object] = {"claim": claim}
        if "batch_id" in DeliveryMessage.__dataclass_fields__:
            fields["batch_id"] = uuid.uuid4().hex  # as the fan-out names its batches
        message = DeliveryMessage(
            notification_id=notification_id,
            notification_type=NotificationType.TOAST,
            payload=TOAST,
            options=WnsOptions(),
            targets=targets,
            **fields,  # type: ignore[arg-type]
        )
        messages.append(message.to_dict())
    return messages


async def enqueue(messages: list[dict[str, object]], concurrency: int = 16) -> None:
    from pushfuncs.context import get_context

    queue = (await get_context()).delivery_queue
    pending = iter(messages)

    async def worker() -> None:
        for message in pending:
            await queue.send(message)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_engine(services: Services, channels: list[str], count: int, batch: int = BATCH) -> EngineResult:
    """Deliver `count` notifications through the engine; the app environment must be applied."""
    import os

    from pushfuncs.metrics import metrics

    messages = delivery_messages(channels, count, batch)
    metrics_before = metrics.snapshot()
    with storage_counter.phase() as enqueue_ops:
        await enqueue(messages)
    sandbox = services.sandbox
    accepted_before = sandbox.sends()
    own_before, server_before = time.process_time(), process_cpu_seconds(sandbox.process.pid)
    azurite_before = process_cpu_seconds(services.azurite.process.pid)
    with storage_counter.phase() as deliver_ops:
        stats, host_cpu = await run_host_on_thread(
            services.azurite.connection_string, os.environ["DELIVERY_QUEUE"], "deliver_notifications", len(messages)
        )
    client_cpu = time.process_time() - own_before
    server_cpu = process_cpu_seconds(sandbox.process.pid) - server_before
    azurite_cpu = process_cpu_seconds(services.azurite.process.pid) - azurite_before
    after = metrics.snapshot()
    delta = {k: v - metrics_before.get(k, 0) for k, v in after.items() if v != metrics_before.get(k, 0)}
    return EngineResult(
        deliveries=count,
        messages=len(messages),
        seconds=stats.seconds,
        delivered=delta.get("wns.success", 0),
        sandbox_accepted=sandbox.sends() - accepted_before,
        client_cpu=client_cpu,
        host_cpu=host_cpu,
        server_cpu=server_cpu,
        azurite_cpu=azurite_cpu,
        enqueue_ops=enqueue_ops,
        deliver_ops=deliver_ops + stats.host_operations(),
        metrics=delta,
        failures=stats.failures,
        errors=stats.errors,
    )
