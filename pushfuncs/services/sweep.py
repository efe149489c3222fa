"""Sweep expired installations out of the registry by their expiry index, never by a scan.

A run walks the expiry partitions (one per day and shard) from where the last run stopped,
page by page, deleting what has expired, and stops when its time budget is spent, saving a
cursor so that the next run (or the next after a crash) resumes there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from pushfuncs.services.registration import remove_installation, repair_installation, repair_pending
from pushfuncs.storage.index import EXPIRY_SHARDS, IndexRow, IndexStore, expiry_key, expiry_partition
from pushfuncs.storage.installations import InstallationStore

logger = logging.getLogger(__name__)

CURSOR_PARTITION = "sweep"
CURSOR_ROW = "cursor"
# Where a first run starts: channels live 30 days, so older index days can only hold leftovers.
FIRST_RUN_LOOKBACK = timedelta(days=60)
PAGE_SIZE = 500


@dataclass
class SweepReport:
    scanned: int = 0
    deleted: int = 0
    stale_rows_repaired: int = 0
    operations_repaired: int = 0
    partitions_done: list[str] = field(default_factory=list)
    finished: bool = False


@dataclass
class Cursor:
    day: str  # YYYYMMDD of the first day not fully swept
    shard: int = 0
    after: str = ""


class ExpirySweeper:
    def __init__(self, installations: InstallationStore, index: IndexStore, index_table: TableClient) -> None:
        self._installations = installations
        self._index = index
        self._table = index_table

    async def _load_cursor(self, now: datetime) -> Cursor:
        try:
            entity = await self._table.get_entity(CURSOR_PARTITION, CURSOR_ROW)
        except ResourceNotFoundError:
            return Cursor(day=(now - FIRST_RUN_LOOKBACK).strftime("%Y%m%d"))
        return Cursor(day=str(entity["Day"]), shard=int(entity["Shard"]), after=str(entity.get("After") or ""))

    async def _save_cursor(self, cursor: Cursor) -> None:
        await self._table.upsert_entity(
            {
                "PartitionKey": CURSOR_PARTITION,
                "RowKey": CURSOR_ROW,
                "Day": cursor.day,
                "Shard": cursor.shard,
                "After": cursor.after,
            }
        )

    async def sweep(self, now: datetime, budget_seconds: float = 240.0) -> SweepReport:
        report = SweepReport()
        deadline = time.monotonic() + budget_seconds
        report.operations_repaired = await repair_pending(self._installations, self._index, now)
        cursor = await self._load_cursor(now)
        today = now.strftime("%Y%m%d")
        while cursor.day <= today:
            partition = expiry_partition(cursor.day, cursor.shard)
            while True:
                if time.monotonic() > deadline:
                    await self._save_cursor(cursor)
                    return report
                rows, after = await self._index.page(partition, cursor.after, PAGE_SIZE)
                await self._sweep_rows(partition, rows, now, report)
                if after is None:
                    break
                cursor.after = after
                await self._save_cursor(cursor)
            report.partitions_done.append(partition)
            cursor.after = ""
            if cursor.shard + 1 < EXPIRY_SHARDS:
                cursor.shard += 1
            elif cursor.day == today:
                # Today's partitions stay open: later rows may expire later today.
                cursor.shard = 0
                break
            else:
                cursor.day = (datetime.strptime(cursor.day, "%Y%m%d") + timedelta(days=1)).strftime("%Y%m%d")
                cursor.shard = 0
            await self._save_cursor(cursor)
        await self._save_cursor(cursor)
        report.finished = True
        return report

    async def _sweep_rows(self, partition: str, rows: list[IndexRow], now: datetime, report: SweepReport) -> None:
        for row in rows:
            report.scanned += 1
            row_is_consistent = expiry_key(row.installation_id, row.expires_at)[0] == partition
            if row_is_consistent and row.expires_at > now:
                continue  # today's partition: not expired yet
            installation = await self._installations.get(row.installation_id)
            if installation is not None and installation.expires_at <= now:
                # Removed only if still expired when removed: a re-registration in between wins.
                if await remove_installation(
                    self._installations, self._index, row.installation_id, only_if_expired_at=now
                ):
                    report.deleted += 1
                    if expiry_key(installation.installation_id, installation.expires_at)[0] == partition:
                        continue
            elif (
                installation is not None
                and expiry_key(installation.installation_id, installation.expires_at)[0] == partition
            ):
                continue  # the registry agrees with this row; it simply has not expired yet
            # A row the registry does not want (left by an operation that died): repaired through
            # the registry, never deleted behind its back (registration.py states why).
            await repair_installation(
                self._installations, self._index, row.installation_id, frozenset({partition}), now
            )
            report.stale_rows_repaired += 1
