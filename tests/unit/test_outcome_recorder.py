"""OutcomeRecorder: outcomes written while another write of the same batch is still under way
land in rows of their own, so no outcome is overwritten (a slow storage write is the case)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pushfuncs.services.delivery import OutcomeRecorder
from pushfuncs.services.messages import DeliveryMessage, DeliveryTarget
from pushfuncs.storage.notifications import TargetOutcome
from pushfuncs.wns import NotificationType, WnsOptions


class SlowStore:
    """Records each row's outcomes; the first write waits until released."""

    def __init__(self) -> None:
        self.rows: dict[str, list[str]] = {}
        self.release = asyncio.Event()
        self.writes = 0

    async def record_outcomes(
        self,
        notification_id: str,
        batch_key: str,
        attempt: int,
        outcomes: list[TargetOutcome],
        now: datetime,
        part: str = "",
        chunk: str = "",
    ) -> None:
        self.writes += 1
        if self.writes == 1:
            await self.release.wait()
        self.rows[chunk] = [o.installation_id for o in outcomes]


def outcome(installation_id: str) -> TargetOutcome:
    return TargetOutcome(installation_id, "delivered", 1, datetime.now(UTC))


async def test_a_flush_during_a_slow_write_does_not_overwrite_it() -> None:
    message = DeliveryMessage(
        "n", NotificationType.RAW, b"x", WnsOptions(), (DeliveryTarget("a", "c"), DeliveryTarget("b", "c")), seq=0
    )
    store = SlowStore()
    recorder = OutcomeRecorder(store, message, lambda: datetime.now(UTC))  # type: ignore[arg-type]
    recorder.FLUSH_SECONDS = 0.0  # every final outcome flushes: the slow case, made certain
    first = asyncio.create_task(recorder.add_final(outcome("a")))
    await asyncio.sleep(0)  # the first write is now under way, and waiting
    await recorder.add_final(outcome("b"))
    store.release.set()
    await first
    await recorder.flush()
    written = sorted(i for ids in store.rows.values() for i in ids)
    assert written == ["a", "b"]
