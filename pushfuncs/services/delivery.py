"""Deliver one queue message: POST to each channel, act on each WNS answer, record the outcome.

Retries are delayed re-enqueues (the queue's visibility delay), never sleeps, so a worker is
never blocked by a throttled or failing channel.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

from pushfuncs.channel_uri import InvalidChannelUri, check_channel_uri_at_send, redact_channel_uri
from pushfuncs.context import AppContext
from pushfuncs.metrics import metrics
from pushfuncs.services.abandoned import record_abandoned
from pushfuncs.services.messages import (
    DeliveryMessage,
    DeliveryTarget,
    MalformedMessage,
    parse_delivery_message,
)
from pushfuncs.services.registration import remove_installation
from pushfuncs.services.tokens import TokenUnavailable
from pushfuncs.storage.notifications import NotificationStore, TargetOutcome
from pushfuncs.storage.removed_channels import RemovedChannel, RemovedChannelFeed
from pushfuncs.wns import (
    Action,
    WnsResult,
    backoff_seconds,
    build_wns_headers,
    new_correlation_vector,
    post_to_channel,
)

logger = logging.getLogger(__name__)

# Per message. The host runs up to 24 messages at once (host.json: batchSize 16, a new batch at
# newBatchThreshold 8), so 8 each keeps the HTTP client's 200 pooled connections busy without
# more sends than connections; more only queue for a connection, and cost CPU waiting (measured
# in bench/: 64 per message was 15-25% more CPU per delivery).
MAX_CONCURRENT_SENDS = 8


class SendTooLate(Exception):
    """A direct send reached its POST after its deadline: the outbox recovery owns it now."""


def _now() -> datetime:
    return datetime.now(UTC)


class DeliveryService:
    def __init__(
        self,
        ctx: AppContext,
        clock: Callable[[], datetime] = _now,
        rng: random.Random | None = None,
    ) -> None:
        self._ctx = ctx
        self._clock = clock
        self._rng = rng or random.Random()
        self._send_by: float | None = None

    async def process(self, body: bytes, redelivered: bool = False) -> None:
        """Handle one message. Raises only on a transient failure the queue should retry.

        `redelivered`: the queue has handed this message out before (a worker died or failed
        with it); targets whose final outcome that earlier run recorded are not sent again.
        """
        try:
            message = parse_delivery_message(body)
        except MalformedMessage as error:
            await self._poison(body, f"malformed delivery message: {error}")
            return
        first_try_of_batch = message.claim and message.attempt == 1 and message.seq is not None
        if first_try_of_batch and not await self._ctx.notifications.claim_batch(
            message.notification_id,
            message.seq,
            message.batch_id,  # type: ignore[arg-type]
        ):
            metrics.add("delivery.duplicates.skipped", len(message.targets))
            return
        recorder = OutcomeRecorder(self._ctx.notifications, message, self._clock)
        if redelivered:
            settled = await recorder.settled_earlier()
            if settled:
                metrics.add("delivery.duplicates.skipped", len(settled))
                message = replace(
                    message, targets=tuple(t for t in message.targets if t.installation_id not in settled)
                )
        await self._deliver(message, recorder)

    async def deliver_direct(self, message: DeliveryMessage, send_by: float | None = None) -> None:
        """Send a single-installation notification accepted moments ago by this process; its
        first outcome closes the outbox on its summary row.

        `send_by` (a `time.monotonic()` instant): past it, nothing is sent and the outbox stays
        pending for the recovery timer, which takes over only well after that instant (so a
        send stuck behind a busy pool or a slow token endpoint is not made twice)."""
        self._send_by = send_by
        try:
            await self._deliver(message, DirectOutcomeRecorder(self._ctx.notifications, message, self._clock))
        except SendTooLate:
            metrics.add("delivery.direct.deferred")
            logger.warning("send of %s left to the outbox recovery: not sent in time", message.notification_id)

    async def _deliver(self, message: DeliveryMessage, recorder: OutcomeRecorder | DirectOutcomeRecorder) -> None:
        retries: dict[int, list[DeliveryTarget]] = defaultdict(list)
        # One jittered backoff for the whole message (its targets share the attempt number), so
        # its retries travel in one message, not one per distinct delay; Retry-After still wins.
        backoff = backoff_seconds(message.attempt, rng=self._rng)

        async def settle(target: DeliveryTarget, result: WnsResult) -> None:
            outcome, delay = await self._settle(message, target, result, backoff)
            if delay is None:
                await recorder.add_final(outcome)
            else:
                recorder.add_pending(outcome)
                retries[delay].append(target)

        await self._send_all(message, settle)
        # Re-enqueue first: if recording fails afterwards, the message is retried, not lost.
        for delay, targets in retries.items():
            retry = replace(
                message, targets=tuple(targets), attempt=message.attempt + 1, part=f"{message.part}-{delay}"
            )
            await self._ctx.delivery_queue.send(retry.to_dict(), delay_seconds=delay)
            metrics.add("delivery.retries.enqueued")
        await recorder.flush()

    async def _send_all(
        self, message: DeliveryMessage, settle: Callable[[DeliveryTarget, WnsResult], Awaitable[None]]
    ) -> None:
        """Send to every target with a few workers (not a task per target: less overhead)."""
        suspended = await self._ctx.sending.suspended_reason()
        if suspended is not None:
            refused = WnsResult(action=Action.FAIL, reason=f"sending suspended: {suspended}", metric="wns.suspended")
            for target in message.targets:
                await settle(target, refused)
            return
        pending = iter(message.targets)

        async def worker() -> None:
            for target in pending:
                await settle(target, await self._send_one(message, target))

        await asyncio.gather(*(worker() for _ in range(min(MAX_CONCURRENT_SENDS, len(message.targets)))))

    async def _send_one(self, message: DeliveryMessage, target: DeliveryTarget) -> WnsResult:
        # Checked where the token leaves, whatever the message or index row says: a channel
        # URI that is not on the allow-list now never gets our bearer token.
        try:
            check_channel_uri_at_send(target.channel_uri, self._ctx.settings.allowed_hosts)
        except InvalidChannelUri as error:
            metrics.add("delivery.channel.refused")
            return WnsResult(
                action=Action.FAIL,
                reason=f"channelNotAllowed: the channel URI {error}; nothing was sent",
                metric="delivery.channel.refused",
            )
        tokens = self._ctx.tokens
        try:
            token = await tokens.get_token()
            result = await self._post(message, target, token)
            if result.action is Action.REFRESH_TOKEN:
                metrics.add("wns.invalidtoken")
                token = await tokens.refresh_after_rejection(token)
                result = await self._post(message, target, token)
                if result.action is Action.REFRESH_TOKEN:
                    refused = "WNS refused a freshly issued token (401 twice)"
                    result = result._replace(action=Action.FAIL, reason=refused)
        except TokenUnavailable as error:
            metrics.add("wns.tokenproviderunreachable")
            return WnsResult(action=Action.RETRY, reason=str(error), metric="wns.tokenproviderunreachable")
        metrics.add(result.metric)
        return result

    async def _post(self, message: DeliveryMessage, target: DeliveryTarget, token: str) -> WnsResult:
        if self._send_by is not None and time.monotonic() > self._send_by:
            raise SendTooLate()
        kind = target.notification_type or message.notification_type
        payload = target.payload if target.payload is not None else message.payload
        headers = build_wns_headers(kind, message.options, token, new_correlation_vector())
        return await post_to_channel(self._ctx.http, target.channel_uri, headers, payload)

    async def _settle(
        self, message: DeliveryMessage, target: DeliveryTarget, result: WnsResult, backoff: float
    ) -> tuple[TargetOutcome, int | None]:
        """The outcome to record, and the retry delay in seconds if the target is retried."""
        outcome = TargetOutcome(
            installation_id=target.installation_id,
            status="failed",
            attempts=message.attempt,
            updated_at=self._clock(),
            reason=result.reason,
            status_code=result.status_code,
            wns_status=result.wns_status,
            error_description=result.error_description,
            msg_id=result.msg_id,
            debug_trace=result.debug_trace,
            ms_cv=result.ms_cv,
            device_connection_status=result.device_connection_status,
        )
        action = result.action
        if action is Action.DELIVERED:
            outcome.status, outcome.reason = "delivered", None
            return outcome, None
        if action is Action.RETRY:
            if message.attempt < self._ctx.settings.delivery_max_attempts:
                outcome.status = "retrying"
                delay = backoff if result.retry_after is None else backoff_seconds(message.attempt, result.retry_after)
                return outcome, max(1, round(delay))
            outcome.reason = f"gave up after {message.attempt} attempts: {result.describe()}"
            metrics.add("delivery.exhausted")
            return outcome, None
        if action is Action.REMOVE_CHANNEL:
            outcome.channel_removed = await remove_installation(
                self._ctx.installations, self._ctx.index, target.installation_id, only_if_channel=target.channel_uri
            )
            logger.info(
                "channel of installation %s is gone (%s); removed=%s",
                target.installation_id,
                result.status_code,
                outcome.channel_removed,
            )
            if outcome.channel_removed:
                await self._feed_removal(message, target, result)
        elif action is Action.STOP_SENDING:
            logger.critical(
                "ALERT: WNS reports our sending domain blocked (410 Domain Blocked) for %s;"
                " stop sending and contact Microsoft",
                redact_channel_uri(target.channel_uri),
            )
            await self._ctx.sending.suspend(f"WNS answered 410 Domain Blocked: {result.error_description}")
        elif action is Action.DROPPED:
            outcome.reason = f"dropped: {result.error_description}" if result.error_description else "dropped"
        return outcome, None

    async def _feed_removal(self, message: DeliveryMessage, target: DeliveryTarget, result: WnsResult) -> None:
        """Best effort: the removal is done, and a retry of this message would not repeat it."""
        removed = RemovedChannel(
            target.installation_id,
            target.channel_uri,
            result.status_code or 0,
            result.error_description,
            self._clock(),
            message.notification_id,
        )
        try:
            await RemovedChannelFeed(self._ctx.notifications.table).record(removed)
        except Exception as error:
            metrics.add("feed.removed.failures")
            logger.warning("removed channel of %s not recorded in the feed (%s)", target.installation_id, error)

    async def _poison(self, body: bytes, reason: str) -> None:
        """Move an unusable message to the poison queue and mark its notification failed."""
        logger.error("delivery message moved to the poison queue: %s", reason)
        metrics.add("delivery.poisoned")
        await self._ctx.poison_queue.send_text(body.decode("utf-8", errors="replace"))
        await self.record_abandoned(body, reason)

    async def record_abandoned(self, body: bytes, reason: str) -> None:
        """Best effort: mark the notification failed when its message is given up on."""
        await record_abandoned(self._ctx.notifications, body, reason)


class DirectOutcomeRecorder:
    """Records a single send's outcome in one merge onto its summary row."""

    def __init__(self, store: NotificationStore, message: DeliveryMessage, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._message = message
        self._clock = clock
        self._outcomes: list[TargetOutcome] = []

    async def add_final(self, outcome: TargetOutcome) -> None:
        self._outcomes.append(outcome)

    def add_pending(self, outcome: TargetOutcome) -> None:
        self._outcomes.append(outcome)

    async def flush(self) -> None:
        await self._store.record_direct_outcomes(self._message.notification_id, self._outcomes, self._clock())


class OutcomeRecorder:
    """Records a delivery message's outcomes: normally in one write at the end; when sends are
    slow, final outcomes are also written about once a second as they come, so a worker that
    dies mid-batch leaves at most about a second of sends unrecorded (and repeated)."""

    FLUSH_SECONDS = 1.0

    def __init__(self, store: NotificationStore, message: DeliveryMessage, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._message = message
        self._clock = clock
        self._run = secrets.token_hex(3)  # rows of this run never overwrite an earlier run's
        self._chunks = 0
        self._final: list[TargetOutcome] = []
        self._pending: list[TargetOutcome] = []
        self._last_flush = time.monotonic()

    async def settled_earlier(self) -> set[str]:
        return await self._store.settled_targets(
            self._message.notification_id, self._message.batch_key, self._message.attempt, self._message.part
        )

    async def add_final(self, outcome: TargetOutcome) -> None:
        self._final.append(outcome)
        if time.monotonic() - self._last_flush >= self.FLUSH_SECONDS:
            # Take the list before awaiting: other workers keep adding while this writes.
            batch, self._final = self._final, []
            self._last_flush = time.monotonic()
            await self._write(batch)

    def add_pending(self, outcome: TargetOutcome) -> None:
        """A target being retried: recorded only after its retry is on the queue."""
        self._pending.append(outcome)

    async def flush(self) -> None:
        rest, self._final, self._pending = self._final + self._pending, [], []
        if rest or not self._chunks:
            await self._write(rest)

    async def _write(self, outcomes: list[TargetOutcome]) -> None:
        m = self._message
        # Numbered before the write: a flush that starts while a slow one is still writing
        # must not reuse its row (an upsert would replace the outcomes in it).
        chunk = f"{self._run}{self._chunks:03d}"
        self._chunks += 1
        await self._store.record_outcomes(
            m.notification_id, m.batch_key, m.attempt, outcomes, self._clock(), m.part, chunk
        )
        self._last_flush = time.monotonic()
