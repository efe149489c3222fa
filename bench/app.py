"""The function app as the Functions host runs it: settings, decorated functions, queue polling.

`HostLikeDriver` feeds a queue to a queue-triggered function with the storage queues extension's
concurrency (host.json: batchSize 16, a new batch once no more than newBatchThreshold 8 are still
running, so at most 24 at once), base64 bodies, and delete on success.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.core.pipeline.transport import AioHttpTransport
from azure.functions.queue import QueueMessage as HostQueueMessage
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from bench.counting import host_scope
from bench.services import Services
from pushfuncs.host_config import max_dequeue_count

ROOT = Path(__file__).resolve().parent.parent
HOST_JSON = ROOT / "host.json"
# Timers never fire during a benchmark (30 February does not come).
NEVER = "0 0 0 30 2 *"


@functools.cache
def functions() -> dict[str, Any]:
    """The app's functions by name (the app object allows one get_functions() per process)."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


async def call_function(name: str, **kwargs: Any) -> Any:
    result = functions()[name].get_user_function()(**kwargs)
    return await result if inspect.isawaitable(result) else result


def queue_functions() -> dict[str, str]:
    """Queue-triggered functions: function name -> queue name expression (e.g. `%DELIVERY_QUEUE%`)."""
    found: dict[str, str] = {}
    for name, function in functions().items():
        trigger = function.get_trigger().get_dict_repr()
        if trigger.get("type") == "queueTrigger":
            found[name] = str(trigger["queueName"])
    return found


def resolve_setting(expression: str) -> str:
    if expression.startswith("%") and expression.endswith("%"):
        return os.environ[expression.strip("%")]
    return expression


def host_queue_options() -> tuple[int, int]:
    """(batchSize, newBatchThreshold) from host.json."""
    queues = json.loads(HOST_JSON.read_text()).get("extensions", {}).get("queues", {})
    batch = int(queues.get("batchSize", 16))
    return batch, int(queues.get("newBatchThreshold", batch // 2))


def http_request(method: str, route: str, body: object = None, **route_params: str) -> func.HttpRequest:
    raw = b"" if body is None else json.dumps(body).encode()
    return func.HttpRequest(
        method=method,
        url=f"http://localhost:7071/api/{route}",
        headers={"content-type": "application/json"},
        params={},
        route_params=route_params,
        body=raw,
    )


async def call_http(name: str, method: str, route: str, body: object = None, **route_params: str) -> Any:
    """Call an HTTP function; returns (status, parsed body)."""
    response: func.HttpResponse = await call_function(name, req=http_request(method, route, body, **route_params))
    raw = response.get_body()
    return response.status_code, (json.loads(raw) if raw else None)


def app_settings(services: Services, token_secret: str | None = None) -> dict[str, str]:
    """The app's settings against Azurite and the sandbox, with tables and queues of its own.

    The WNS token is shared through Key Vault (the sandbox's), as deployed; instances given the
    same `token_secret` share one token.
    """
    from sandbox import app_settings  # imports aiohttp: only after the benchmark's CA is in place

    sandbox = services.sandbox
    suffix = uuid.uuid4().hex[:10]
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": services.azurite.connection_string,
        "DELIVERY_QUEUE": f"delivery-{suffix}",
        "FANOUT_QUEUE": f"fanout-{suffix}",
        "INSTALLATIONS_TABLE": f"inst{suffix}",
        "NOTIFICATIONS_TABLE": f"notif{suffix}",
        "INDEX_TABLE": f"index{suffix}",
        "DELIVERY_MAX_ATTEMPTS": "4",
        **app_settings(
            sandbox.url,
            sandbox.tenant_id,
            sandbox.client_id,
            sandbox.client_secret,
            sandbox.identity_header,
            sandbox.ca_path,
        ),
        "WNS_CLIENT_CERTIFICATE_PATH": "",
        "WNS_TOKEN_SECRET_NAME": token_secret or f"wns-token-{suffix}",
        "TOKEN_REFRESH_SCHEDULE": NEVER,
        "SWEEP_SCHEDULE": NEVER,
        "OUTBOX_RECOVERY_SCHEDULE": NEVER,
        "RETENTION_SCHEDULE": NEVER,
    }


# One entry per app instance the benchmark started in this process.
INSTANCES: list[str] = []


@asynccontextmanager
async def fresh_instance(services: Services, token_secret: str) -> AsyncIterator[dict[str, str]]:
    """A new app instance (context) on tables and queues of its own, sharing the Key Vault token.

    Azurite keeps tables in memory and its entity-group transactions slow down as a table grows
    (about linearly with its row count); Azure Table Storage does not. Fresh tables per
    measurement keep Azurite's cost as close to constant as it gets.
    """
    from pushfuncs.context import close_context, get_context

    INSTANCES.append(token_secret)
    with app_environment(app_settings(services, token_secret)) as values:
        await get_context()
        try:
            yield values
        finally:
            await close_context()


@contextmanager
def app_environment(values: dict[str, str]) -> Iterator[dict[str, str]]:
    """Apply the settings to this process (the app reads them lazily) and restore them after."""
    from pushfuncs.config import applied_settings

    with applied_settings(values):
        yield values


def queue_client(connection_string: str, queue: str) -> QueueClient:
    # The host's own queue reads and deletes (done in .NET in Azure): no proxy settings or
    # ~/.netrc read again for every request, as aiohttp does with environment settings on.
    return QueueClient.from_connection_string(
        connection_string,
        queue,
        transport=AioHttpTransport(use_env_settings=False),
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )


@dataclass
class DriverStats:
    messages: int = 0
    failures: int = 0
    first_dequeue: float | None = None
    last_delete: float | None = None
    polls: int = 0
    empty_polls: int = 0
    deletes: int = 0
    updates: int = 0
    poisoned: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def host_operations(self) -> Counter[str]:
        """The host's storage transactions for the messages it handled (empty polls excluded)."""
        ops = Counter(
            {
                "host:GetMessages": self.polls - self.empty_polls,
                "host:DeleteMessage": self.deletes,
                "host:UpdateMessage": self.updates,
            }
        )
        return +ops

    @property
    def seconds(self) -> float:
        if self.first_dequeue is None or self.last_delete is None:
            return 0.0
        return self.last_delete - self.first_dequeue


class HostLikeDriver:
    """Runs one queue-triggered function over one queue, with the host's concurrency."""

    def __init__(
        self,
        connection_string: str,
        queue: str,
        function: str,
        batch_size: int | None = None,
        new_batch_threshold: int | None = None,
        visibility_timeout: int = 600,
        invoke: Callable[[str, HostQueueMessage], Awaitable[Any]] | None = None,
    ) -> None:
        default_batch, default_threshold = host_queue_options()
        # How an invocation reaches the app: by default on this loop; see `run_host_on_thread`.
        self.invoke = invoke or (lambda function, message: call_function(function, msg=message))
        self.queue = queue_client(connection_string, queue)
        self.function = function
        self.batch_size = batch_size or default_batch
        self.threshold = new_batch_threshold if new_batch_threshold is not None else default_threshold
        self.visibility_timeout = visibility_timeout
        self.stats = DriverStats()
        self._inflight: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    async def _receive(self) -> list[Any]:
        self.stats.polls += 1
        with host_scope():
            pages = self.queue.receive_messages(
                messages_per_page=self.batch_size, visibility_timeout=self.visibility_timeout
            ).by_page()
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                page = None
            messages = [message async for message in page] if page is not None else []
        if not messages:
            self.stats.empty_polls += 1
        return messages

    async def _handle(self, message: Any) -> None:
        host_message = HostQueueMessage(
            id=message.id,
            body=message.content.encode("utf-8"),
            dequeue_count=message.dequeue_count,
            pop_receipt=message.pop_receipt,
        )
        try:
            await self.invoke(self.function, host_message)
        except Exception as error:
            self.stats.failures += 1
            self.stats.errors[f"{type(error).__name__}: {str(error)[:120]}"] += 1
            if (message.dequeue_count or 0) >= max_dequeue_count():
                # The host would move it to the poison queue; here it is dropped and counted.
                self.stats.poisoned += 1
                self.stats.messages += 1
                self.stats.deletes += 1
                with host_scope():
                    await self.queue.delete_message(message)
                return
            self.stats.updates += 1
            with host_scope():
                await self.queue.update_message(message, visibility_timeout=1)
            return
        self.stats.deletes += 1
        with host_scope():
            await self.queue.delete_message(message)
        self.stats.messages += 1
        self.stats.last_delete = time.perf_counter()

    async def poll_once(self) -> int:
        """Receive one batch (if below the threshold) and start its invocations; returns how many."""
        if len(self._inflight) > self.threshold:
            await asyncio.wait(set(self._inflight), return_when=asyncio.FIRST_COMPLETED)
            return 0
        started = time.perf_counter()
        batch = await self._receive()
        if batch and self.stats.first_dequeue is None:
            self.stats.first_dequeue = started
        for message in batch:
            task = asyncio.create_task(self._handle(message))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return len(batch)

    async def run(self, expected: int, timeout: float = 600.0) -> DriverStats:
        """Process until `expected` messages were completed (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while self.stats.messages < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.function}: {self.stats.messages} of {expected} messages after {timeout}s")
            received = await self.poll_once()
            if not received and not self._inflight:
                await asyncio.sleep(0.02)
            elif not received and len(self._inflight) <= self.threshold:
                await asyncio.wait(set(self._inflight), timeout=0.02, return_when=asyncio.FIRST_COMPLETED)
        await self.drain()
        return self.stats

    async def drain(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def pending(self) -> int:
        with host_scope():
            return (await self.queue.get_queue_properties()).approximate_message_count

    async def close(self) -> None:
        await self.drain()
        await self.queue.close()


async def run_host_on_thread(
    connection_string: str, queue: str, function: str, expected: int
) -> tuple[DriverStats, float]:
    """Drive `function` over `queue` as the host does, from a thread with its own event loop and
    queue client; returns the stats and that thread's CPU seconds.

    In Azure the host is another process (.NET): receiving and deleting queue messages is not the
    worker's CPU. Here the stand-in makes those requests on its own thread, and each invocation
    runs on the calling (worker's) loop, so the two are measured apart."""
    worker_loop = asyncio.get_running_loop()

    def on_worker_loop(name: str, message: HostQueueMessage) -> Awaitable[Any]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call_function(name, msg=message), worker_loop))

    async def drive() -> DriverStats:
        driver = HostLikeDriver(connection_string, queue, function, invoke=on_worker_loop)
        try:
            return await driver.run(expected)
        finally:
            await driver.close()

    def host_thread() -> tuple[DriverStats, float]:
        started = time.thread_time()
        stats = asyncio.run(drive())
        return stats, time.thread_time() - started

    return await asyncio.to_thread(host_thread)


async def run_all_queues(drivers: list[HostLikeDriver], timeout: float = 600.0, quiet: float = 0.5) -> float:
    """Drive several queues at once until all are empty and idle for `quiet` seconds; returns seconds."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("queues not drained in time")
        received = sum(await asyncio.gather(*(d.poll_once() for d in drivers)))
        busy = any(d.busy for d in drivers)
        if received or busy:
            idle_since = None
            if not received:
                await asyncio.sleep(0.01)
            continue
        pending = sum(await asyncio.gather(*(d.pending() for d in drivers)))
        if pending:
            idle_since = None
            await asyncio.sleep(0.05)
            continue
        now = time.perf_counter()
        idle_since = idle_since or now
        if now - idle_since >= quiet:
            last = max((d.stats.last_delete or started) for d in drivers)
            return last - started
        await asyncio.sleep(0.05)
