"""Timer triggers: run a function on its NCRONTAB or TimeSpan schedule, in UTC.

Like the host's timer listener, a function never overlaps itself: the next occurrence is
computed after an invocation ends, so occurrences missed while it ran are skipped. Failures
are logged and never stop the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from azure.functions.timer import TimerRequest

from devhost.functions import FunctionSpec
from devhost.invocation import Invoker
from devhost.ncrontab import CronSchedule, IntervalSchedule

log = logging.getLogger("devhost")

# An invocation that starts later than this after its occurrence is reported as past due.
PAST_DUE_TOLERANCE = timedelta(seconds=1)


def _now() -> datetime:
    return datetime.now(UTC)


class TimerRunner:
    """Runs one timer-triggered function."""

    def __init__(self, spec: FunctionSpec, schedule: CronSchedule | IntervalSchedule, invoker: Invoker) -> None:
        self.spec = spec
        self.schedule = schedule
        self.run_on_startup = bool(spec.trigger.get("runOnStartup"))
        self._invoker = invoker
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last: datetime | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"timer:{self.spec.name}")

    async def stop(self, timeout: float) -> None:
        """Stop scheduling; wait up to `timeout` seconds for a running invocation."""
        self._stopping.set()
        if self._task:
            _, pending = await asyncio.wait({self._task}, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _invoke(self, scheduled: datetime | None, next_due: datetime | None) -> None:
        now = _now()
        past_due = scheduled is not None and now - scheduled > PAST_DUE_TOLERANCE
        status = {
            "Last": (self._last or now).isoformat(),
            "Next": next_due.isoformat() if next_due else None,
            "LastUpdated": now.isoformat(),
        }
        request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
        await self._invoker.invoke(self.spec, request)
        self._last = now

    async def _sleep_until(self, moment: datetime) -> bool:
        """Sleep until `moment`; False if the runner was stopped first."""
        while not self._stopping.is_set():
            remaining = (moment - _now()).total_seconds()
            if remaining <= 0:
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=remaining)
        return False

    async def _run(self) -> None:
        if self.run_on_startup:
            await self._invoke(None, self.schedule.next_after(_now()))
        while not self._stopping.is_set():
            due = self.schedule.next_after(_now())
            if due is None:
                log.warning("%s: the schedule '%s' never fires.", self.spec.name, self.schedule)
                return
            if not await self._sleep_until(due):
                return
            await self._invoke(due, self.schedule.next_after(due))
