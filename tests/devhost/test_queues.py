"""Queue triggers and queue outputs through the local host, against Azurite."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from devhost.azurite import Azurite
from devhost.host import LocalFunctionsHost
from tests.devhost.conftest import eventually, peek_all, queue_client, wait_for_messages, write_host_json
from tests.devhost.sample_app import RECORDER


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def post_items(host: LocalFunctionsHost, lines: list[str]) -> httpx.Response:
    assert host.keys is not None
    async with httpx.AsyncClient(base_url=host.base_url) as client:
        return await client.post(
            "/api/items/books/1",
            headers={"x-functions-key": host.keys.default_function_key},
            content="\n".join(lines).encode(),
        )


async def test_queue_output_writes_base64_on_the_wire(
    azurite: Azurite, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    unconsumed = f"out-{queue_names['WORK_QUEUE']}"
    async with start_host(OUT_QUEUE=unconsumed) as host:
        response = await post_items(host, ["first", "zweite ✓"])
        assert response.status_code == 201
    assert sorted(await peek_all(azurite, unconsumed)) == sorted([b64("first"), b64("zweite ✓")])


async def test_output_to_trigger_round_trip(
    azurite: Azurite, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    async with start_host() as host:
        await post_items(host, ["round-trip"])
        await eventually(lambda: len(RECORDER.work) == 1, message="the queue trigger ran")
        await eventually(lambda: not host.queue_listeners[0].in_flight, message="settled")
    assert RECORDER.work[0]["body"] == "round-trip"
    assert RECORDER.work[0]["dequeue_count"] == 1
    assert await peek_all(azurite, queue_names["WORK_QUEUE"]) == []


async def test_message_encoding_none_uses_plain_text(
    azurite: Azurite, project: Path, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    write_host_json(project, queues={"messageEncoding": "none"})
    unconsumed = f"out-{queue_names['WORK_QUEUE']}"
    async with start_host(OUT_QUEUE=unconsumed) as host:
        await post_items(host, ["plain"])
        async with queue_client(azurite, queue_names["WORK_QUEUE"]) as raw:
            await raw.send_message("not base64 at all")
        await eventually(lambda: len(RECORDER.work) == 1)
    assert await peek_all(azurite, unconsumed) == ["plain"]
    assert RECORDER.work[0]["body"] == "not base64 at all"


async def test_failing_message_goes_to_poison_after_max_dequeue_count(
    azurite: Azurite, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    work, poison = queue_names["WORK_QUEUE"], queue_names["WORK_QUEUE"] + "-poison"
    async with start_host():
        async with queue_client(azurite, work, base64=True) as client:
            await client.send_message("fail-always")
        await eventually(lambda: len(RECORDER.work) == 3, message="three tries")
        await wait_for_messages(azurite, poison)
        await asyncio.sleep(0.5)  # a fourth try would show up here
    assert [r["dequeue_count"] for r in RECORDER.work] == [1, 2, 3]
    assert len({r["id"] for r in RECORDER.work}) == 1
    assert await peek_all(azurite, poison) == [b64("fail-always")]
    assert await peek_all(azurite, work) == []


async def test_failed_message_waits_visibility_timeout_before_retry(
    azurite: Azurite, project: Path, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    write_host_json(project, queues={"visibilityTimeout": "00:00:02", "maxDequeueCount": 2})
    async with start_host():
        async with queue_client(azurite, queue_names["WORK_QUEUE"], base64=True) as client:
            await client.send_message("fail-slowly")
        await eventually(lambda: len(RECORDER.work) == 1)
        await asyncio.sleep(1.0)
        assert len(RECORDER.work) == 1, "retried before visibilityTimeout"
        await eventually(lambda: len(RECORDER.work) == 2, timeout=5)


async def test_message_that_is_not_base64_goes_straight_to_poison(
    azurite: Azurite, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    work, poison = queue_names["WORK_QUEUE"], queue_names["WORK_QUEUE"] + "-poison"
    raw_text = "this is {not} base64!"
    async with start_host():
        async with queue_client(azurite, work) as client:
            await client.send_message(raw_text)
        await wait_for_messages(azurite, poison)
    assert await peek_all(azurite, poison) == [raw_text]
    assert await peek_all(azurite, work) == []
    assert RECORDER.work == []


async def test_str_parameter_gets_the_decoded_text(
    azurite: Azurite, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    async with start_host():
        async with queue_client(azurite, queue_names["TEXT_QUEUE"], base64=True) as client:
            await client.send_message("héllo wörld")
        await eventually(lambda: RECORDER.text == ["héllo wörld"])


async def test_batch_size_and_new_batch_threshold_bound_concurrency(
    azurite: Azurite, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    # batchSize 4, newBatchThreshold 2: a second batch starts once two of the first are done,
    # so six run at once and never more.
    durations = ["0.2", "0.3", "1.5", "1.5", "1.5", "1.5", "1.5", "1.5"]
    async with queue_client(azurite, queue_names["SLOW_QUEUE"], base64=True) as client:
        await client.create_queue()
        for seconds in durations:
            await client.send_message(seconds)
    async with start_host():
        await eventually(lambda: len(RECORDER.slow_ends) == len(durations), timeout=15)
    assert RECORDER.max_running == 6


async def test_serial_processing_with_batch_size_one(
    azurite: Azurite, project: Path, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    write_host_json(project, queues={"batchSize": 1, "newBatchThreshold": 0})
    async with queue_client(azurite, queue_names["SLOW_QUEUE"], base64=True) as client:
        await client.create_queue()
        for _ in range(3):
            await client.send_message("0.2")
    async with start_host():
        await eventually(lambda: len(RECORDER.slow_ends) == 3)
    assert RECORDER.max_running == 1


async def test_lease_is_renewed_while_the_function_runs(
    azurite: Azurite, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    async with start_host(host_options={"message_lease": timedelta(seconds=2)}):
        async with queue_client(azurite, queue_names["SLOW_QUEUE"], base64=True) as client:
            await client.send_message("3.5")
        await eventually(lambda: len(RECORDER.slow_ends) == 1, timeout=10)
        await asyncio.sleep(0.3)
    assert len(RECORDER.slow_starts) == 1, "the message was delivered again while its function ran"
    assert await peek_all(azurite, queue_names["SLOW_QUEUE"]) == []


async def test_stop_waits_for_running_invocations(
    azurite: Azurite, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    async with start_host():
        async with queue_client(azurite, queue_names["SLOW_QUEUE"], base64=True) as client:
            await client.send_message("1.0")
        await eventually(lambda: len(RECORDER.slow_starts) == 1)
    assert len(RECORDER.slow_ends) == 1
    assert await peek_all(azurite, queue_names["SLOW_QUEUE"]) == []


async def test_output_wakes_an_idle_listener(project: Path, start_host: Callable[..., Any]) -> None:
    write_host_json(project, queues={"maxPollingInterval": "00:01:00"})
    async with start_host() as host:
        await asyncio.sleep(3.5)  # the idle backoff has grown past a second by now
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await post_items(host, ["wake up"])
        await eventually(lambda: len(RECORDER.work) == 1)
        assert loop.time() - sent < 0.8


async def test_stop_is_bounded_and_leaves_unfinished_messages_queued(
    azurite: Azurite, start_host: Callable[..., Any], queue_names: dict[str, str]
) -> None:
    loop = asyncio.get_running_loop()
    async with start_host(host_options={"drain_timeout": 0.5, "message_lease": timedelta(seconds=2)}):
        async with queue_client(azurite, queue_names["SLOW_QUEUE"], base64=True) as client:
            await client.send_message("30")
        await eventually(lambda: len(RECORDER.slow_starts) == 1)
        stopping = loop.time()
    assert loop.time() - stopping < 2.0
    assert await wait_for_messages(azurite, queue_names["SLOW_QUEUE"], timeout=5) == [b64("30")]
