"""Sends started after the answer are kept until done, and a shutdown can wait for them."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from pushfuncs.background import BackgroundTasks


async def test_drain_waits_for_tasks_and_the_tasks_they_start() -> None:
    tasks = BackgroundTasks()
    done: list[str] = []

    async def second() -> None:
        await asyncio.sleep(0.01)
        done.append("second")

    async def first() -> None:
        await asyncio.sleep(0.01)
        tasks.start(second(), "second")
        done.append("first")

    tasks.start(first(), "first")
    gc.collect()  # asyncio holds only weak references to tasks: ours must keep them alive
    await tasks.drain(timeout=5)
    assert done == ["first", "second"]
    assert len(tasks) == 0


async def test_a_failed_task_is_logged_without_its_message(caplog: pytest.LogCaptureFixture) -> None:
    tasks = BackgroundTasks()

    async def fails() -> None:
        raise RuntimeError("secret detail")

    with caplog.at_level(logging.ERROR):
        tasks.start(fails(), "send of abc")
        await tasks.drain(timeout=5)
    assert "send of abc failed (RuntimeError)" in caplog.text
    assert "secret detail" not in caplog.text


async def test_drain_gives_up_after_its_timeout() -> None:
    tasks = BackgroundTasks()
    tasks.start(asyncio.sleep(10), "slow")
    with pytest.raises(TimeoutError):
        await tasks.drain(timeout=0.05)
    assert len(tasks) == 1
