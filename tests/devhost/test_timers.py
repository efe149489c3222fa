"""Timer triggers through the local host."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from azure.functions.timer import TimerRequest

from tests.devhost.conftest import eventually
from tests.devhost.sample_app import RECORDER


async def test_run_on_startup_fires_at_once(start_host: Callable[..., Any]) -> None:
    async with start_host():
        await eventually(lambda: len(RECORDER.ticks) == 1, timeout=0.5, message="the startup run")
        await asyncio.sleep(0.3)
    assert len(RECORDER.ticks) == 1, "the yearly schedule must not fire"
    startup = RECORDER.ticks[0]
    assert isinstance(startup, TimerRequest)
    assert startup.past_due is False


async def test_every_second_schedule_fires_each_second(start_host: Callable[..., Any]) -> None:
    async with start_host(TICK_SCHEDULE="* * * * * *"):
        await eventually(lambda: len(RECORDER.ticks) >= 4, timeout=5, message="three scheduled runs")
    assert not any(tick.past_due for tick in RECORDER.ticks)
    scheduled = RECORDER.ticks[1:]
    assert all(tick.schedule_status["Next"] for tick in scheduled)


async def test_timespan_schedule(start_host: Callable[..., Any]) -> None:
    async with start_host(TICK_SCHEDULE="00:00:01"):
        await eventually(lambda: len(RECORDER.ticks) >= 3, timeout=4, message="two interval runs")


async def test_failures_do_not_stop_the_schedule(start_host: Callable[..., Any]) -> None:
    RECORDER.fail_ticks = True
    async with start_host(TICK_SCHEDULE="* * * * * *"):
        await eventually(lambda: len(RECORDER.ticks) >= 3, timeout=5, message="runs after failures")


async def test_invalid_schedule_puts_only_that_function_in_error(start_host: Callable[..., Any]) -> None:
    async with start_host(TICK_SCHEDULE="every minute") as host:
        assert "tick" in host.function_errors
        assert "hello" in host.specs
        await asyncio.sleep(0.2)
    assert RECORDER.ticks == []
