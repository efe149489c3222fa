"""Fixtures for the local host's tests: a fast host.json, unique queue names, a running host.

Azurite comes from the session-wide `azurite` fixture (tests/conftest.py), started once with
devhost.azurite.start_azurite() and stopped after the session.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from devhost.azurite import Azurite
from devhost.host import LocalFunctionsHost
from tests.devhost.sample_app import RECORDER, create_app

# Small numbers so retries, polling and batches are observable within seconds.
FAST_QUEUES = {
    "batchSize": 4,
    "newBatchThreshold": 2,
    "maxDequeueCount": 3,
    "visibilityTimeout": "00:00:00",
    "maxPollingInterval": "00:00:00.2",
}
# Fires once a year, so only runOnStartup runs in tests that do not look at timers.
RARE_SCHEDULE = "0 0 0 1 1 *"


def write_host_json(root: Path, queues: dict[str, Any] | None = None, http: dict[str, Any] | None = None) -> None:
    extensions: dict[str, Any] = {"queues": {**FAST_QUEUES, **(queues or {})}}
    if http is not None:
        extensions["http"] = http
    (root / "host.json").write_text(json.dumps({"version": "2.0", "extensions": extensions}))


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, message: str = "") -> None:
    """Wait until `predicate()` holds; fail the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for: {message or predicate}")
        await asyncio.sleep(0.05)


@pytest.fixture(autouse=True)
def reset_recorder() -> Iterator[None]:
    RECORDER.reset()
    yield
    RECORDER.reset()


@pytest.fixture
def queue_names() -> dict[str, str]:
    """Settings naming a fresh set of queues, so tests sharing one Azurite never meet."""
    suffix = uuid.uuid4().hex[:10]
    return {
        "WORK_QUEUE": f"work-{suffix}",
        "OUT_QUEUE": f"work-{suffix}",
        "TEXT_QUEUE": f"text-{suffix}",
        "SLOW_QUEUE": f"slow-{suffix}",
        "TICK_SCHEDULE": RARE_SCHEDULE,
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_host_json(tmp_path)
    return tmp_path


@pytest.fixture
def start_host(azurite: Azurite, project: Path, queue_names: dict[str, str]) -> Callable[..., Any]:
    """`async with start_host(**settings, host_options=...) as host:` runs the sample app."""

    @asynccontextmanager
    async def running(host_options: dict[str, Any] | None = None, **settings: str) -> AsyncIterator[LocalFunctionsHost]:
        values = {"AzureWebJobsStorage": azurite.connection_string, **queue_names, **settings}
        options: dict[str, Any] = {"port": 0, "keys_path": project / "keys.json", **(host_options or {})}
        host = LocalFunctionsHost(create_app(), root=project, settings=values, **options)
        async with host:
            yield host

    return running


@asynccontextmanager
async def queue_client(azurite: Azurite, name: str, *, base64: bool = False) -> AsyncIterator[QueueClient]:
    """A client on one queue; without `base64` it sends and reads the raw wire text."""
    policy = TextBase64EncodePolicy() if base64 else None
    async with QueueClient.from_connection_string(
        azurite.connection_string, name, message_encode_policy=policy
    ) as client:
        yield client


async def peek_all(azurite: Azurite, name: str) -> list[str]:
    """The raw wire text of the visible messages on a queue ([] if it does not exist)."""
    async with queue_client(azurite, name) as client:
        try:
            return [m.content for m in await client.peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []


async def wait_for_messages(azurite: Azurite, name: str, timeout: float = 10.0) -> list[str]:
    """Peek a queue until it has messages; fail the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (messages := await peek_all(azurite, name)):
        if loop.time() > deadline:
            pytest.fail(f"no message arrived on {name} within {timeout}s")
        await asyncio.sleep(0.05)
    return messages
