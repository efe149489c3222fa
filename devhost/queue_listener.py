"""Queue triggers: poll a storage queue with the semantics of the storage queues extension (v5).

- Receive up to batchSize messages, each invisible for a 10-minute lease that is renewed at
  half-time while the function runs; fetch the next batch once no more than newBatchThreshold
  are still running, so at most batchSize + newBatchThreshold run at once.
- An empty queue backs off exponentially (randomized) from 100 ms to maxPollingInterval; a
  message found, or one sent by an output binding of this host, resets the backoff.
- Success deletes the message. Failure makes it visible again after visibilityTimeout, or,
  once its dequeue count reaches maxDequeueCount, copies its wire text to `<queue>-poison` and
  deletes it. A body that is not valid base64 (under base64 encoding) goes straight to poison.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta
from typing import Any

from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import QueueMessage as StorageQueueMessage

from devhost.functions import FunctionSpec
from devhost.hostconfig import MIN_POLLING_INTERVAL, QueueOptions
from devhost.invocation import Invoker
from devhost.storage import MessageDecodeError, QueueClients, decode_message

log = logging.getLogger("devhost")

DEFAULT_LEASE = timedelta(minutes=10)
POISON_SUFFIX = "-poison"
MAX_QUEUE_NAME = 63


def poison_queue_name(queue: str) -> str | None:
    """`<queue>-poison`, or None where the extension has no poison queue (already poison, or too long)."""
    if queue.endswith(POISON_SUFFIX) or len(queue) + len(POISON_SUFFIX) > MAX_QUEUE_NAME:
        return None
    return queue + POISON_SUFFIX


class Backoff:
    """Randomized exponential backoff between a minimum and a maximum, reset by a success."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        self._minimum = minimum
        self._maximum = maximum
        self._rng = rng or random.Random()
        self._current = minimum
        self._exponent = 1

    def next_delay(self, succeeded: bool) -> float:
        if succeeded:
            self._current, self._exponent = self._minimum, 1
        elif self._current != self._maximum:
            increment = self._rng.uniform(0.8, 1.2) * 2 ** (self._exponent - 1) * self._minimum
            candidate = self._minimum + increment
            if candidate < self._maximum:
                self._current, self._exponent = candidate, self._exponent + 1
            else:
                self._current = self._maximum
        return self._current


class _Lease:
    """The latest pop receipt of a message whose invisibility is being renewed."""

    def __init__(self, pop_receipt: str) -> None:
        self.pop_receipt = pop_receipt
        self.done = asyncio.Event()


class QueueListener:
    """Polls one queue for one function."""

    def __init__(
        self,
        spec: FunctionSpec,
        options: QueueOptions,
        clients: QueueClients,
        connection: str,
        invoker: Invoker,
        *,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self.spec = spec
        self.queue_name: str = spec.trigger["queueName"]
        self.poison_name = poison_queue_name(self.queue_name)
        self.connection = connection
        self._options = options
        self._threshold = options.effective_new_batch_threshold
        self._clients = clients
        self._invoker = invoker
        self._lease_seconds = max(1, int(lease.total_seconds()))
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    async def start(self) -> None:
        """Create the queue and its poison queue if missing, then start polling."""
        queues_ready = True
        try:
            await self._ensure_queues()
        except Exception as error:  # the poll loop retries, backing off, as for any storage error
            log.warning("%s: cannot create queue '%s' yet: %s", self.spec.name, self.queue_name, error)
            queues_ready = False
        self._task = asyncio.create_task(self._poll(queues_ready), name=f"queue:{self.spec.name}")

    def notify(self) -> None:
        """A message was just added to this queue: end the current backoff wait."""
        self._wake.set()

    async def stop(self, timeout: float) -> None:
        """Stop receiving, then wait up to `timeout` seconds for running invocations."""
        self._stopping.set()
        self._wake.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._task:
            _, pending = await asyncio.wait({self._task}, timeout=timeout)
            for task in pending:
                task.cancel()
        if self._inflight:
            remaining = max(0.0, deadline - loop.time())
            _, pending = await asyncio.wait(set(self._inflight), timeout=remaining)
            if pending:
                log.warning(
                    "%s: %d invocation(s) still running after %.0fs; their messages will "
                    "reappear when their lease expires.",
                    self.spec.name,
                    len(pending),
                    timeout,
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    async def _ensure_queues(self) -> None:
        await self._clients.create_if_missing(self.connection, self.queue_name)
        if self.poison_name:
            await self._clients.create_if_missing(self.connection, self.poison_name)

    async def _receive(self) -> list[StorageQueueMessage]:
        client = self._clients.get(self.connection, self.queue_name)
        pages = client.receive_messages(
            messages_per_page=self._options.batch_size, visibility_timeout=self._lease_seconds
        ).by_page()
        try:
            page = await pages.__anext__()
        except StopAsyncIteration:
            return []
        return [message async for message in page]

    async def _poll(self, queues_ready: bool) -> None:
        backoff = Backoff(MIN_POLLING_INTERVAL.total_seconds(), self._options.max_polling_interval.total_seconds())
        found_since_delay = False
        failing = not queues_ready
        while not self._stopping.is_set():
            self._wake.clear()
            batch: list[StorageQueueMessage] = []
            try:
                if not queues_ready:
                    await self._ensure_queues()
                    queues_ready = True
                batch = await self._receive()
                if failing:
                    log.info("%s: queue '%s' is reachable again.", self.spec.name, self.queue_name)
                    failing = False
            except Exception as error:  # storage errors back off, as the host does
                queues_ready = False
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "%s: polling '%s' failed: %s", self.spec.name, self.queue_name, error)
                failing = True
            if batch:
                for message in batch:
                    task = asyncio.create_task(self._process(message))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
                found_since_delay = True
                while len(self._inflight) > self._threshold:
                    await asyncio.wait(set(self._inflight), return_when=asyncio.FIRST_COMPLETED)
                continue
            delay = backoff.next_delay(found_since_delay)
            found_since_delay = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _process(self, message: StorageQueueMessage) -> None:
        try:
            if message.dequeue_count is not None and (message.dequeue_count > self._options.max_dequeue_count):
                reason = f"its dequeue count is past MaxDequeueCount ({self._options.max_dequeue_count})"
                await self._move_to_poison(message, message.pop_receipt, reason)
                return
            try:
                body = decode_message(message.content, self._options.message_encoding)
            except MessageDecodeError:
                await self._move_to_poison(message, message.pop_receipt, "its body is not valid base64")
                return
            try:
                trigger_value = self._trigger_value(message, body)
            except UnicodeDecodeError:
                log.error("%s: message %s is not UTF-8 text.", self.spec.name, message.id)
                await self._complete(message, message.pop_receipt, succeeded=False)
                return
            lease = _Lease(message.pop_receipt)
            renewal = asyncio.create_task(self._renew(message.id, lease))
            try:
                result = await self._invoker.invoke(self.spec, trigger_value)
            finally:
                lease.done.set()
                await renewal
            await self._complete(message, lease.pop_receipt, result.succeeded)
        except Exception as error:  # e.g. a pop-receipt mismatch: someone else owns it now
            log.warning("%s: could not settle message %s: %s", self.spec.name, message.id, error)

    def _trigger_value(self, message: StorageQueueMessage, body: bytes) -> Any:
        annotation = self.spec.trigger_annotation
        if annotation is str or annotation == "str":
            return body.decode("utf-8")
        if annotation is bytes or annotation == "bytes":
            return body
        return FunctionQueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )

    async def _renew(self, message_id: str, lease: _Lease) -> None:
        client = self._clients.get(self.connection, self.queue_name)
        interval = self._lease_seconds / 2
        while True:
            try:
                await asyncio.wait_for(lease.done.wait(), timeout=interval)
                return
            except TimeoutError:
                pass
            try:
                updated = await client.update_message(
                    message_id, lease.pop_receipt, visibility_timeout=self._lease_seconds
                )
                lease.pop_receipt = updated.pop_receipt or lease.pop_receipt
            except Exception as error:  # a failed renewal is retried next interval
                log.warning("%s: renewing message %s failed: %s", self.spec.name, message_id, error)

    async def _complete(self, message: StorageQueueMessage, pop_receipt: str, succeeded: bool) -> None:
        client = self._clients.get(self.connection, self.queue_name)
        if succeeded:
            await client.delete_message(message.id, pop_receipt)
        elif self.poison_name is None:
            # No poison queue: leave the message invisible until its lease ends, to avoid a hot loop.
            return
        elif (message.dequeue_count or 0) >= self._options.max_dequeue_count:
            reason = f"it has reached MaxDequeueCount of {self._options.max_dequeue_count}"
            await self._move_to_poison(message, pop_receipt, reason)
        else:
            visibility = int(self._options.visibility_timeout.total_seconds())
            await client.update_message(message.id, pop_receipt, visibility_timeout=visibility)

    async def _move_to_poison(self, message: StorageQueueMessage, pop_receipt: str, reason: str) -> None:
        if self.poison_name is None:
            return
        log.warning(
            "%s: moving message %s to queue '%s': %s.",
            self.spec.name,
            message.id,
            self.poison_name,
            reason,
        )
        # The wire text is copied unchanged, so the poison message decodes exactly as the original.
        await self._clients.send(self.connection, self.poison_name, [message.content])
        client = self._clients.get(self.connection, self.queue_name)
        await client.delete_message(message.id, pop_receipt)
