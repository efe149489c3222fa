"""Outbox recovery: queue the single sends whose process stopped before sending them.

A single-installation send is accepted with a pending outbox on its summary row and sent by
the accepting process right after it answers. If that process dies first, the row stays
pending; this puts its delivery message on the delivery queue. Rows are found by creation
time (the start of their id), scanning from a saved cursor, so a run reads only new rows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from pushfuncs.context import AppContext
from pushfuncs.storage.notifications import id_time

logger = logging.getLogger(__name__)

# A send still pending this long after acceptance is taken as lost (sends take well under a minute).
GRACE = timedelta(minutes=2)
# Rescanned behind the cursor, for instances whose clocks run a little behind.
OVERLAP = timedelta(minutes=5)
FIRST_LOOKBACK = timedelta(days=1)
MAX_PER_RUN = 1_000


@dataclass
class RecoveryReport:
    recovered: int
    scanned_until: datetime


async def recover_outbox(ctx: AppContext, now: datetime) -> RecoveryReport:
    store = ctx.notifications
    cursor = await store.outbox_cursor()
    start = cursor - OVERLAP if cursor is not None else now - FIRST_LOOKBACK
    until = now - GRACE
    recovered = 0
    async for notification_id, work in store.pending_outbox(start, until):
        await ctx.delivery_queue.send(json.loads(work))
        await store.mark_outbox(notification_id, "queued")
        recovered += 1
        logger.warning("notification %s was accepted but never sent; queued it for delivery", notification_id)
        if recovered >= MAX_PER_RUN:
            until = id_time(notification_id) or until
            break
    if until > start:
        await store.save_outbox_cursor(until)
    return RecoveryReport(recovered=recovered, scanned_until=until)
