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
from pushfuncs.storage.index import ALL_SHARDS, all_partition, tag_of_partition, tag_partitions, user_partition
from pushfuncs.tag_expression import evaluate, mentioned_tags, parse_tag_expression
from pushfuncs.templates import Template, TemplateError, render

logger = logging.getLogger(__name__)

BATCH_SIZE = 100  # targets per delivery message at most
# Characters of targets per message: the queue takes 64 KiB after its own base64 (x4/3),
# and the message also carries the shared payload.
MAX_MESSAGE_CHARS = 36_000
PAGES_PER_INVOCATION = 20


def target_sources(target: dict[str, object]) -> list[str]:
    """The index partitions (or, for id lists, chunk labels) a target is expanded from."""
    if target.get("all") is True:
        return [all_partition(shard) for shard in range(ALL_SHARDS)]
    if "userId" in target:
        return [user_partition(str(target["userId"]))]
    if "tag" in target:
        return tag_partitions(str(target["tag"]))
    if "tagExpression" in target:
        tags = mentioned_tags(parse_tag_expression(str(target["tagExpression"])))
        return [partition for tag in tags for partition in tag_partitions(tag)]
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
            for chunk in _batches(targets):
                batch = DeliveryMessage(
                    notification_id=cursor.notification_id,
                    notification_type=cursor.notification_type,
                    payload=cursor.payload,
                    options=cursor.options,
                    targets=tuple(chunk),
                    claim=True,
                    # Unique per enqueue: a page expanded twice after a crash claims nothing twice.
                    batch_id=uuid.uuid4().hex,
                    seq=cursor.seq,
                )
                await self._ctx.delivery_queue.send(batch.to_dict())
                await self._ctx.notifications.record_page(cursor.notification_id, cursor.seq, len(chunk))
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
            return [t for f in live if (t := _target(cursor, f.installation_id, f.channel_uri, f.templates))], ""
        partition = sources[cursor.source]
        rows, after = await self._ctx.index.page(partition, cursor.after or None, BATCH_SIZE)
        expression = cursor.target.get("tagExpression")
        node = parse_tag_expression(str(expression)) if expression else None
        # Tags whose partitions were all expanded before this one's (sources come tag by tag).
        earlier = {tag_of_partition(p) for p in sources[: cursor.source]} - {tag_of_partition(partition)}
        targets = []
        for row in rows:
            if row.expires_at <= now or not row.channel_uri:
                continue
            if node is not None and (not evaluate(node, row.tags) or row.tags & earlier):
                continue  # not a match, or already sent from an earlier tag's partition
            target = _target(cursor, row.installation_id, row.channel_uri, row.templates)
            if target is not None:
                targets.append(target)
        return targets, after or ""


def _target(
    cursor: FanoutMessage, installation_id: str, channel_uri: str, templates: dict[str, Template]
) -> DeliveryTarget | None:
    """The delivery target; for a template send, with this device's rendering (None: the
    installation has no such template, so, as in Notification Hubs, it is not targeted)."""
    if cursor.template is None:
        return DeliveryTarget(installation_id, channel_uri)
    template = templates.get(cursor.template)
    if template is None:
        return None
    try:
        payload = render(template, cursor.properties)
    except TemplateError as error:
        logger.warning("template %s of installation %s not sent: %s", cursor.template, installation_id, error)
        metrics.add("fanout.template.unrenderable")
        return None
    return DeliveryTarget(installation_id, channel_uri, payload, template.notification_type)


def _batches(targets: list[DeliveryTarget]) -> list[list[DeliveryTarget]]:
    """Split targets into delivery messages that fit a queue message (64 KiB, base64-encoded)."""
    batches: list[list[DeliveryTarget]] = []
    current: list[DeliveryTarget] = []
    size = 0
    for target in targets:
        cost = len(target.channel_uri) + len(target.installation_id) + 40 + (len(target.payload or b"") * 4 // 3)
        if current and (len(current) >= BATCH_SIZE or size + cost > MAX_MESSAGE_CHARS):
            batches.append(current)
            current, size = [], 0
        current.append(target)
        size += cost
    if current:
        batches.append(current)
    return batches
