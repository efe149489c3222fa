"""Fan-out: expand a user, tag, tag expression or id list into delivery batches, page by page.

Each invocation handles a bounded number of pages, then enqueues a continuation message with
its cursor. Delivery batches claim their targets before sending, so if a crash makes a page
be expanded twice, its second batch finds the targets claimed and sends nothing again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from pushfuncs.context import AppContext
from pushfuncs.metrics import metrics
from pushfuncs.services.messages import (
    DeliveryMessage,
    DeliveryTarget,
    FanoutMessage,
    MalformedMessage,
    parse_fanout_message,
)
from pushfuncs.storage.index import tag_partition, user_partition
from pushfuncs.tag_expression import evaluate, mentioned_tags, parse_tag_expression

logger = logging.getLogger(__name__)

BATCH_SIZE = 100  # targets per delivery message (also the entity-group transaction limit)
PAGES_PER_INVOCATION = 20


def target_sources(target: dict[str, object]) -> list[str]:
    """The index partitions (or, for id lists, chunk labels) a target is expanded from."""
    if "userId" in target:
        return [user_partition(str(target["userId"]))]
    if "tag" in target:
        return [tag_partition(str(target["tag"]))]
    if "tagExpression" in target:
        return [tag_partition(t) for t in mentioned_tags(parse_tag_expression(str(target["tagExpression"])))]
    ids = list(target.get("installationIds") or [])
    return [f"ids-{i}" for i in range(0, len(ids), BATCH_SIZE)]


class FanoutService:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    async def process(self, body: bytes) -> None:
        try:
            message = parse_fanout_message(body)
        except MalformedMessage as error:
            logger.error("fan-out message moved to the poison queue: %s", error)
            await self._ctx.fanout_poison_queue.send_text(body.decode("utf-8", errors="replace"))
            return
        sources = target_sources(message.target)
        cursor = message
        for _ in range(PAGES_PER_INVOCATION):
            if cursor.source >= len(sources):
                break
            targets, after = await self._page(cursor, sources)
            if targets:
                batch = DeliveryMessage(
                    notification_id=cursor.notification_id,
                    notification_type=cursor.notification_type,
                    payload=cursor.payload,
                    options=cursor.options,
                    targets=tuple(targets),
                    claim=True,
                    # Unique per enqueue: a page expanded twice after a crash claims nothing twice.
                    batch_id=uuid.uuid4().hex,
                    seq=cursor.seq,
                )
                await self._ctx.delivery_queue.send(batch.to_dict())
                await self._ctx.notifications.record_page(cursor.notification_id, cursor.seq, len(targets))
                metrics.add("fanout.batches")
                cursor = replace(cursor, seq=cursor.seq + 1)
            cursor = replace(cursor, after=after) if after else replace(cursor, source=cursor.source + 1, after="")
        if cursor.source < len(sources):
            await self._ctx.fanout_queue.send(cursor.to_dict())
            metrics.add("fanout.continuations")
            return
        await self._ctx.notifications.mark(cursor.notification_id, "accepted", FanoutDone=True, Batches=cursor.seq)

    async def _page(self, cursor: FanoutMessage, sources: list[str]) -> tuple[list[DeliveryTarget], str]:
        """One page of live targets from the current source, and the cursor within it ("" when done)."""
        now = datetime.now(UTC)
        if "installationIds" in cursor.target:
            ids = list(cursor.target["installationIds"])  # type: ignore[call-overload]
            chunk = ids[cursor.source * BATCH_SIZE : (cursor.source + 1) * BATCH_SIZE]
            found = await asyncio.gather(*(self._ctx.installations.get(i) for i in chunk))
            live = [f for f in found if f is not None and f.is_live(now)]
            return [DeliveryTarget(f.installation_id, f.channel_uri) for f in live], ""
        partition = sources[cursor.source]
        rows, after = await self._ctx.index.page(partition, cursor.after or None, BATCH_SIZE)
        expression = cursor.target.get("tagExpression")
        node = parse_tag_expression(str(expression)) if expression else None
        earlier = {p.removeprefix("tag-") for p in sources[: cursor.source]}
        targets = []
        for row in rows:
            if row.expires_at <= now or not row.channel_uri:
                continue
            if node is not None and (not evaluate(node, row.tags) or row.tags & earlier):
                continue  # not a match, or already sent from an earlier tag's partition
            targets.append(DeliveryTarget(row.installation_id, row.channel_uri))
        return targets, after or ""
