"""Notification retention: delete the notifications created before now - retention, by key range.

Notification ids begin with their creation time in ms as 12 hex digits, so the notifications
created before the cutoff are the PartitionKeys in [cursor, cutoff prefix): one range query,
never a scan. Digits and `a`-`f` sort before the table's other partitions (`idem-...`,
`~system`), and the cutoff is itself 12 hex digits, so the range cannot reach them; a key of
another shape met in the range is left alone all the same.

Rows are deleted per notification in entity-group transactions of up to 100, within a time
budget. A run cut short saves the partition it stopped in as the cursor (in `~system`), and
the next run resumes there; after a crash the next run restarts from the last saved cursor,
and the rows already deleted are simply no longer found. Either way runs converge
(tests/integration/test_retention.py).

A notification's Idempotency-Key row is deleted before the chunk holding its summary, so a
replay never answers the id of a notification that is gone: after retention the key is
forgotten, and a replay with it makes a new notification.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pushfuncs.storage.notifications import SUMMARY, NotificationStore, id_time_prefix

logger = logging.getLogger(__name__)

# Below every notification id: the range starts here on a first run.
FIRST_PARTITION = "0" * 12
# Entity-group transactions hold at most 100 operations.
MAX_BATCH = 100
_NOTIFICATION_ID = re.compile(r"[0-9a-f]{12}")


@dataclass
class RetentionReport:
    started_from: str
    notifications: int = 0  # summaries deleted
    rows: int = 0
    idempotency_keys: int = 0
    finished: bool = False


async def expire_notifications(
    store: NotificationStore,
    now: datetime,
    retention: timedelta,
    budget_seconds: float = 240.0,
    clock: Callable[[], float] = time.monotonic,
) -> RetentionReport:
    """Delete every row of the notifications created before `now - retention`, within the budget."""
    deadline = clock() + budget_seconds
    cutoff = id_time_prefix(now - retention)
    start = await store.retention_cursor() or FIRST_PARTITION
    report = RetentionReport(started_from=start)
    partition, row_keys, idempotency_row = "", [], None
    async for pk, rk, idem in store.keys_created_before(start, cutoff):
        if not _NOTIFICATION_ID.match(pk):
            logger.warning("retention: partition %r is not a notification; left alone", pk)
            continue
        if row_keys and (pk != partition or len(row_keys) == MAX_BATCH):
            if clock() > deadline:
                await store.save_retention_cursor(partition)
                return report
            await _delete_chunk(store, partition, row_keys, idempotency_row, report)
            row_keys, idempotency_row = [], None
        partition = pk
        row_keys.append(rk)
        idempotency_row = idem or idempotency_row
    if row_keys:
        await _delete_chunk(store, partition, row_keys, idempotency_row, report)
    if cutoff > start:
        await store.save_retention_cursor(cutoff)
    report.finished = True
    return report


async def _delete_chunk(
    store: NotificationStore,
    notification_id: str,
    row_keys: list[str],
    idempotency_row: str | None,
    report: RetentionReport,
) -> None:
    if idempotency_row is not None and await store.delete_idempotency_row(idempotency_row, notification_id):
        report.idempotency_keys += 1
    await store.delete_rows(notification_id, row_keys)
    report.rows += len(row_keys)
    if SUMMARY in row_keys:
        report.notifications += 1
