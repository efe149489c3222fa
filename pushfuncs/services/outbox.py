"""Outbox recovery: queue the work of sends whose process stopped before queueing or sending it.

Every send is accepted with its work (the queue message) on its summary row, pending. A
single-installation send is sent by the accepting process right after it answers; any other
send's message is put on its queue before the answer. If that process dies first, the row
stays pending; this puts the message on its queue (a scheduled send keeps its time). Rows are
found by creation time (the start of their id), scanning from a saved cursor, so a run reads
only new rows. A fan-out queued twice sends nothing twice: its delivery batches are claimed
by sequence number.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from pushfuncs.context import AppContext
from pushfuncs.storage.notifications import OUTBOX_FANOUT, id_time

logger = logging.getLogger(__name__)

# A send still pending this long after acceptance is taken as lost (sends take well under a minute).
GRACE = timedelta(minutes=2)
# The accepting process POSTs a single send only within this window after acceptance; with the
# WNS client's 20 s bound on a POST, it is done well before GRACE, so the recovery never queues
# a send that its process is still about to make (that would deliver it twice).
DIRECT_SEND_WINDOW = timedelta(seconds=45)
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
    async for work in store.pending_outbox(start, until):
        notification_id = work.notification_id
        queue = ctx.fanout_queue if work.queue == OUTBOX_FANOUT else ctx.delivery_queue
        delay = max(0.0, (work.send_at - now).total_seconds()) if work.send_at else 0.0
        await queue.send(json.loads(work.message), delay_seconds=delay)
        await store.mark_outbox(notification_id, "queued")
        recovered += 1
        logger.warning("notification %s was accepted but never sent; queued it for delivery", notification_id)
        if recovered >= MAX_PER_RUN:
            until = id_time(notification_id) or until
            break
    if until > start:
        await store.save_outbox_cursor(until)
    return RecoveryReport(recovered=recovered, scanned_until=until)
