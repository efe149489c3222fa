"""Timer triggers: keep the shared WNS token fresh in Key Vault; sweep expired installations;
queue single sends that their process never sent; delete notifications past their retention."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.functions as func

from pushfuncs.context import get_context
from pushfuncs.services.outbox import recover_outbox
from pushfuncs.services.retention import expire_notifications
from pushfuncs.services.sweep import ExpirySweeper

logger = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.function_name("refresh_wns_token")
@bp.timer_trigger(arg_name="timer", schedule="%TOKEN_REFRESH_SCHEDULE%", run_on_startup=True)
@bp.retry(strategy="exponential_backoff", max_retry_count="5", minimum_interval="00:00:10", maximum_interval="00:05:00")
async def refresh_wns_token(timer: func.TimerRequest) -> None:
    ctx = await get_context()
    try:
        replaced = await ctx.tokens.refresh_shared_token()
    except Exception as error:
        # Raise so the retry policy tries again; deliveries fetch a token themselves meanwhile.
        logger.error("refreshing the WNS token failed: %s", error)
        raise
    logger.info("WNS token %s", "refreshed" if replaced else "still fresh; left in place")


@bp.function_name("sweep_expired_installations")
@bp.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False)
async def sweep_expired_installations(timer: func.TimerRequest) -> None:
    ctx = await get_context()
    sweeper = ExpirySweeper(ctx.installations, ctx.index, ctx.index_table)
    report = await sweeper.sweep(datetime.now(UTC))
    logger.info(
        "sweep: scanned %d, deleted %d expired installations, repaired %d stale index rows, finished=%s",
        report.scanned,
        report.deleted,
        report.stale_rows_repaired,
        report.finished,
    )


@bp.function_name("recover_unsent_notifications")
@bp.timer_trigger(arg_name="timer", schedule="%OUTBOX_RECOVERY_SCHEDULE%", run_on_startup=False)
async def recover_unsent_notifications(timer: func.TimerRequest) -> None:
    ctx = await get_context()
    report = await recover_outbox(ctx, datetime.now(UTC))
    if report.recovered:
        logger.warning("outbox recovery: queued %d notifications accepted but never sent", report.recovered)


@bp.function_name("expire_old_notifications")
@bp.timer_trigger(arg_name="timer", schedule="%RETENTION_SCHEDULE%", run_on_startup=False)
async def expire_old_notifications(timer: func.TimerRequest) -> None:
    ctx = await get_context()
    report = await expire_notifications(ctx.notifications, datetime.now(UTC), ctx.settings.notification_retention)
    logger.info(
        "retention: deleted %d notifications (%d rows, %d idempotency keys) from %s on, finished=%s",
        report.notifications,
        report.rows,
        report.idempotency_keys,
        report.started_from,
        report.finished,
    )
