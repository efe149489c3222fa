"""Fan-out: expand a target (user, tag, expression, broadcast, id list, or a scheduled single
installation) into delivery batches, page by page, when the send is due.

Each invocation handles a bounded number of pages, then enqueues a continuation message with
its cursor. Delivery batches claim their targets before sending, so if a crash makes a page
be expanded twice, its second batch finds the targets claimed and sends nothing again.

Every target found ends with an outcome: named installations that are gone when the send fires,
and renderings a template cannot make (over WNS's size, a character XML cannot carry), are
recorded as failed with the reason, in a batch of their own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from pushfuncs.context import AppContext
from pushfuncs.metrics import metrics
from pushfuncs.services.abandoned import record_abandoned
from pushfuncs.services.messages import (
    DeliveryMessage,
    DeliveryTarget,
    FanoutMessage,
    MalformedMessage,
    parse_fanout_message,
)
from pushfuncs.storage.index import (
    ALL_SHARDS,
    IndexRow,
    all_partition,
    tag_of_partition,
    tag_partitions,
    user_partition,
)
from pushfuncs.storage.installations import Installation
from pushfuncs.storage.notifications import TargetOutcome
from pushfuncs.storage.schedule import ScheduleStore
from pushfuncs.tag_expression import evaluate, mentioned_tags, parse_tag_expression
from pushfuncs.templates import TemplateError, render

logger = logging.getLogger(__name__)

BATCH_SIZE = 100  # targets per delivery message at most
PAGE_SIZE = 1_000  # index rows read per query (Table Storage's largest page)
# Batch numbers of lane n start at n * this: 100,000 batches (10 million targets) per lane.
LANE_SEQ_STRIDE = 100_000
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
    ids = named_installations(target)
    return [f"ids-{i}" for i in range(0, len(ids), BATCH_SIZE)]


def named_installations(target: dict[str, object]) -> list[str]:
    """The ids of an installationIds target, or of a single (scheduled) installationId one."""
    if "installationId" in target:
        return [str(target["installationId"])]
    return [str(i) for i in target.get("installationIds") or []]  # type: ignore[attr-defined]


class FanoutService:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    async def process(self, body: bytes) -> None:
        try:
            message = parse_fanout_message(body)
        except MalformedMessage as error:
            logger.error("fan-out message moved to the poison queue: %s", error)
            metrics.add("fanout.poisoned")
            await self._ctx.fanout_poison_queue.send_text(body.decode("utf-8", errors="replace"))
            await self.record_abandoned(body, f"malformed fan-out message: {error}")
            return
        # Only a scheduled send can be cancelled: a send for now reads nothing to decide.
        first = message.lane is None and message.source == 0 and message.seq == 0 and not message.after
        schedule = ScheduleStore(self._ctx.notifications.table)
        if first and message.scheduled and not await schedule.fire(message.notification_id):
            logger.info("notification %s was cancelled before it fired; nothing sent", message.notification_id)
            metrics.add("fanout.cancelled")
            return
        # Continuations carry the short target; a long id list is read from the summary row.
        target = await self._ctx.notifications.target_of(message.notification_id) if message.ids_in_summary else None
        target = target or message.target
        sources = target_sources(target)
        if message.lane is None and len(sources) > 1:
            await self._start_lanes(message, len(sources))
            return
        await self._expand_lane(message if message.lane is not None else replace(message, lane=0), target, sources)

    async def _start_lanes(self, message: FanoutMessage, lanes: int) -> None:
        """One message per source (shard, tag shard, id chunk), queued at once: the sources
        expand in parallel, on as many instances as the host scales to. Each lane numbers its
        delivery batches from its own base, so lanes never claim each other's batches."""
        await self._ctx.notifications.note_progress(message.notification_id, Lanes=lanes)
        await asyncio.gather(
            *(
                self._ctx.fanout_queue.send(
                    replace(message, lane=lane, source=lane, seq=lane * LANE_SEQ_STRIDE).to_dict()
                )
                for lane in range(lanes)
            )
        )
        metrics.add("fanout.lanes", lanes)

    async def _expand_lane(self, message: FanoutMessage, target: dict[str, object], sources: list[str]) -> None:
        """Expand this lane's source page by page. The next page is read while this page's
        batches are queued and recorded, so each page costs about one round trip."""
        cursor = message
        lane = message.lane or 0
        page: asyncio.Task[tuple[list[DeliveryTarget], list[TargetOutcome], str]] | None = None
        finished = cursor.source >= len(sources)
        for pages_left in range(PAGES_PER_INVOCATION, 0, -1):
            if finished:
                break
            targets, failures, after = await (page or self._page(cursor, target, sources))
            page = None
            if after and pages_left > 1:
                page = asyncio.create_task(self._page(replace(cursor, after=after), target, sources))
            cursor = await self._queue_page(cursor, targets, failures)
            if after:
                cursor = replace(cursor, after=after)
            else:
                finished = True
        if not finished:
            await self._ctx.fanout_queue.send(cursor.to_dict())
            metrics.add("fanout.continuations")
            return
        if len(sources) <= 1:  # one lane, never split: the summary says it is done
            await self._ctx.notifications.note_progress(cursor.notification_id, FanoutDone=True, Batches=cursor.seq)
        else:
            await self._ctx.notifications.record_lane_done(cursor.notification_id, lane)

    async def _queue_page(
        self, cursor: FanoutMessage, targets: list[DeliveryTarget], failures: list[TargetOutcome]
    ) -> FanoutMessage:
        """Queue one page's delivery batches and record them (all at once); returns the cursor
        with the next batch number."""
        pages: list[tuple[int, int]] = []
        if failures:
            await self._record_failures(cursor, failures)
            pages.append((cursor.seq, len(failures)))
            cursor = replace(cursor, seq=cursor.seq + 1)
        messages = []
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
            messages.append(batch.to_dict())
            pages.append((cursor.seq, len(chunk)))
            cursor = replace(cursor, seq=cursor.seq + 1)
        # Queued before recorded: a crash in between re-expands the page, and the claims make
        # its second batches send nothing.
        await asyncio.gather(*(self._ctx.delivery_queue.send(m) for m in messages))
        if pages:
            await self._ctx.notifications.record_pages(cursor.notification_id, pages)
        metrics.add("fanout.batches", len(messages))
        return cursor

    async def record_abandoned(self, body: bytes, reason: str) -> None:
        """Best effort: mark the notification failed when its fan-out message is given up on."""
        await record_abandoned(self._ctx.notifications, body, reason)

    async def _record_failures(self, cursor: FanoutMessage, failures: list[TargetOutcome]) -> None:
        """Targets that cannot be sent, as a batch of their own (idempotent if the page is redone)."""
        store = self._ctx.notifications
        now = datetime.now(UTC)
        await store.record_outcomes(cursor.notification_id, f"{cursor.seq:08d}", 1, failures, now, chunk="fanout")
        metrics.add("fanout.targets.failed", len(failures))

    async def _page(
        self, cursor: FanoutMessage, target: dict[str, object], sources: list[str]
    ) -> tuple[list[DeliveryTarget], list[TargetOutcome], str]:
        """One page of the lane's source: targets to send, targets failed, and the cursor
        within the source ("" when done)."""
        now = datetime.now(UTC)
        targets: list[DeliveryTarget] = []
        failures: list[TargetOutcome] = []
        if not sources[cursor.source].startswith(("all-", "user-", "tag-")):
            chunk = named_installations(target)[cursor.source * BATCH_SIZE : (cursor.source + 1) * BATCH_SIZE]
            found = await asyncio.gather(*(self._ctx.installations.get(i) for i in chunk))
            for installation_id, installation in zip(chunk, found, strict=True):
                if installation is None or not installation.is_live(now):
                    failures.append(_failed(installation_id, "notRegistered: no live installation when the send fired"))
                    continue
                self._add(cursor, installation, targets, failures, missing_template_fails=True)
            return targets, failures, ""
        partition = sources[cursor.source]
        columns = (["Tags"] if target.get("tagExpression") else []) + (["Templates"] if cursor.template else [])
        rows, after = await self._ctx.index.page(partition, cursor.after or None, PAGE_SIZE, columns)
        expression = target.get("tagExpression")
        node = parse_tag_expression(str(expression)) if expression else None
        # Tags whose partitions were all expanded before this one's (sources come tag by tag).
        earlier = {tag_of_partition(p) for p in sources[: cursor.source]} - {tag_of_partition(partition)}
        for row in rows:
            if row.expires_at <= now or not row.channel_uri:
                continue
            if node is not None and (not evaluate(node, row.tags) or row.tags & earlier):
                continue  # not a match, or already sent from an earlier tag's partition
            self._add(cursor, row, targets, failures, missing_template_fails=False)
        return targets, failures, after or ""

    def _add(
        self,
        cursor: FanoutMessage,
        found: Installation | IndexRow,
        targets: list[DeliveryTarget],
        failures: list[TargetOutcome],
        missing_template_fails: bool,
    ) -> None:
        """The delivery target of one installation; for a template send, with this device's
        rendering. An installation without the template is, as in Notification Hubs, not
        targeted by a tag or broadcast send; named explicitly, it fails with the reason."""
        if cursor.template is None:
            targets.append(DeliveryTarget(found.installation_id, found.channel_uri))
            return
        template = found.templates.get(cursor.template)
        if template is None:
            if missing_template_fails:
                failures.append(_failed(found.installation_id, f"templateNotFound: no template {cursor.template!r}"))
            return
        try:
            payload = render(template, cursor.properties)
        except TemplateError as error:
            metrics.add("fanout.template.unrenderable")
            failures.append(_failed(found.installation_id, f"templateNotRenderable: {error}"))
            return
        targets.append(DeliveryTarget(found.installation_id, found.channel_uri, payload, template.notification_type))


def _failed(installation_id: str, reason: str) -> TargetOutcome:
    return TargetOutcome(installation_id, "failed", attempts=0, updated_at=datetime.now(UTC), reason=reason)


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
