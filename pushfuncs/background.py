"""Work a process finishes after answering: the sends started by `POST /api/notifications`.

Tasks are kept referenced until done (asyncio keeps only weak references), and `drain`
lets a shutting-down host finish them. A process that dies first loses nothing: the
notification's outbox row is still pending and the outbox recovery queues it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            logger.error("%s failed (%s); the outbox recovery will queue it", task.get_name(), type(error).__name__)

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every task started so far (and any they start) has finished."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.wait(set(self._tasks))
