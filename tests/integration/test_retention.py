"""Notifications past their retention are deleted by key range, with their Idempotency-Key rows;
young notifications and the table's other partitions are left alone; runs cut short or crashed
resume and converge."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables.aio import TableClient
from azure.functions.timer import TimerRequest

from pushfuncs.config import ConfigurationError, load_settings
from pushfuncs.context import get_context
from pushfuncs.metrics import metrics
from pushfuncs.services.retention import expire_notifications
from pushfuncs.services.sending import IDEMPOTENCY_PREFIX
from pushfuncs.storage.notifications import (
    IDEMPOTENCY_ROW,
    IDEMPOTENCY_ROW_KEY,
    NotificationRecord,
    NotificationStore,
    TargetOutcome,
    id_time_prefix,
    new_notification_id,
)
from sandbox import SandboxClient
from tests.harness import FUNCTIONS, call_function, call_http, finish_background_sends, http_request
from tests.integration.test_delivery import TOAST, device, status

__all__ = ["device"]  # the fixture, shared with the delivery tests

REPO = Path(__file__).resolve().parents[2]
RETENTION = timedelta(days=30)
# Partitions of the notifications table that are not notifications; some sort inside the
# retention's key range ("01-legacy"), the rest after it.
OTHER_PARTITIONS = [("~system", "note"), ("sending", "x"), ("01-legacy", "x"), (IDEMPOTENCY_PREFIX + "0" * 64, "key")]


def idempotency_partition(key: str) -> str:
    return IDEMPOTENCY_PREFIX + hashlib.sha256(key.encode()).hexdigest()


async def fabricate(store: NotificationStore, created: datetime, outcome_rows: int = 1, key: str | None = None) -> str:
    """A fan-out notification as the app writes it: summary, page, claim and outcome rows, and
    for `key` the Idempotency-Key row, named on the summary."""
    notification_id = new_notification_id(created)
    await store.create(NotificationRecord(notification_id, "toast", {"tag": "news"}, created, targeted=None))
    await store.record_pages(notification_id, [(0, outcome_rows)])
    assert await store.claim_batch(notification_id, 0, "m0")
    outcome = TargetOutcome("dev-1", "delivered", 1, created)
    rows = [
        ("upsert", {"PartitionKey": notification_id, "RowKey": f"b:m{i:05d}:a001", "O0": "{}"})
        for i in range(1, outcome_rows)
    ]
    for start in range(0, len(rows), 100):
        await store.table.submit_transaction(rows[start : start + 100])
    await store.record_outcomes(notification_id, "m00000", 1, [outcome], created)
    if key is not None:
        await name_idempotency_row(store, notification_id, key)
    return notification_id


async def name_idempotency_row(store: NotificationStore, notification_id: str, key: str) -> None:
    """The key's row (as a send with the key writes it) and its name on the summary."""
    partition = idempotency_partition(key)
    await store.table.upsert_entity(
        {"PartitionKey": partition, "RowKey": IDEMPOTENCY_ROW_KEY, "NotificationId": notification_id, "Queued": True}
    )
    await store.table.upsert_entity({"PartitionKey": notification_id, "RowKey": "summary", IDEMPOTENCY_ROW: partition})


async def row_keys(table: Any, partition: str) -> list[str]:
    rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"])
    return [str(row["RowKey"]) async for row in rows]


async def plant_other_partitions(table: TableClient) -> None:
    for pk, rk in OTHER_PARTITIONS:
        await table.upsert_entity({"PartitionKey": pk, "RowKey": rk, "Mark": 1})


async def assert_other_partitions_untouched(table: TableClient) -> None:
    for pk, rk in OTHER_PARTITIONS:
        assert (await table.get_entity(pk, rk))["Mark"] == 1, pk


async def get_status_code(notification_id: str) -> int:
    response = await call_http("get_notification", "GET", f"notifications/{notification_id}", id=notification_id)
    return response.status


def single_send(installation_id: str) -> dict[str, Any]:
    return {"type": "toast", "payload": TOAST, "target": {"installationId": installation_id}}


async def send_with_key(installation_id: str, key: str) -> dict[str, Any]:
    request = http_request("POST", "notifications", single_send(installation_id), headers={"Idempotency-Key": key})
    response = await call_function("send_notification", req=request)
    assert response.status_code == 202, response.get_body()
    return json.loads(response.get_body())


async def test_old_notifications_go_with_every_row_and_young_ones_stay(
    app_env: dict[str, str], device: dict[str, Any]
) -> None:
    ctx = await get_context()
    store, now = ctx.notifications, datetime.now(UTC)
    await plant_other_partitions(store.table)
    # 228 rows (summary, page, claim, 225 outcome rows): three transactions, the summary in the last.
    old = [await fabricate(store, now - timedelta(days=40), outcome_rows=225, key="old-key")]
    old.append(await fabricate(store, now - RETENTION - timedelta(minutes=1)))
    young = [await fabricate(store, now - RETENTION + timedelta(minutes=1), key="young-key")]
    young.append((await send_with_key(device["id"], "sent-now"))["id"])
    await finish_background_sends()

    report = await expire_notifications(store, now, RETENTION)

    assert report.finished and report.notifications == 2 and report.idempotency_keys == 1
    assert report.rows == 228 + 4
    for notification_id in old:
        assert await row_keys(store.table, notification_id) == []
        assert await get_status_code(notification_id) == 404
    assert await row_keys(store.table, idempotency_partition("old-key")) == []
    for notification_id in young:
        assert await get_status_code(notification_id) == 200
    assert (await status(young[1]))["status"] == "delivered"
    assert await row_keys(store.table, idempotency_partition("young-key")) == [IDEMPOTENCY_ROW_KEY]
    assert await row_keys(store.table, idempotency_partition("sent-now")) == [IDEMPOTENCY_ROW_KEY]
    await assert_other_partitions_untouched(store.table)
    # The next run starts at the cutoff: nothing before it is read again.
    again = await expire_notifications(store, now + timedelta(seconds=1), RETENTION)
    assert again.started_from == id_time_prefix(now - RETENTION) and again.rows == 0


async def test_after_retention_a_replayed_key_makes_a_new_notification(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    ctx = await get_context()
    first = await send_with_key(device["id"], "order-42")
    await finish_background_sends()
    # What the send path records on the summary: the key's row, to delete with the notification.
    await name_idempotency_row(ctx.notifications, first["id"], "order-42")
    replay = await send_with_key(device["id"], "order-42")
    assert replay["id"] == first["id"] and replay.get("idempotentReplay")

    report = await expire_notifications(ctx.notifications, datetime.now(UTC) + RETENTION + timedelta(days=1), RETENTION)

    assert report.notifications == 1 and report.idempotency_keys == 1
    assert await get_status_code(first["id"]) == 404
    later = await send_with_key(device["id"], "order-42")
    await finish_background_sends()
    assert later["id"] != first["id"] and not later.get("idempotentReplay")
    assert (await status(later["id"]))["status"] == "delivered"
    assert len(sandbox_client.inbox(device["channelId"])) == 2


async def test_an_idempotency_key_claimed_again_meanwhile_is_kept(app_env: dict[str, str]) -> None:
    ctx = await get_context()
    store, now = ctx.notifications, datetime.now(UTC)
    old = await fabricate(store, now - timedelta(days=40), key="reused")
    newer = await fabricate(store, now, key="reused")  # the key's row now names the newer one

    report = await expire_notifications(store, now, RETENTION)

    assert report.notifications == 1 and report.idempotency_keys == 0
    assert await row_keys(store.table, old) == []
    row = await store.table.get_entity(idempotency_partition("reused"), IDEMPOTENCY_ROW_KEY)
    assert row["NotificationId"] == newer


async def test_a_run_cut_short_by_its_budget_resumes_from_its_cursor(app_env: dict[str, str]) -> None:
    ctx = await get_context()
    store, now = ctx.notifications, datetime.now(UTC)
    old = sorted([await fabricate(store, now - timedelta(days=40, minutes=i)) for i in range(5)])
    ticks = itertools.count()

    def clock() -> float:
        return float(next(ticks))  # every look at the clock takes a second

    cut = await expire_notifications(store, now, RETENTION, budget_seconds=2.5, clock=clock)

    assert not cut.finished and 0 < cut.notifications < len(old)
    gone = cut.notifications
    assert [await row_keys(store.table, i) == [] for i in old] == [True] * gone + [False] * (len(old) - gone)
    assert await store.retention_cursor() == old[gone]
    rest = await expire_notifications(store, now, RETENTION)
    assert rest.finished and rest.started_from == old[gone] and rest.notifications == len(old) - gone
    assert [await row_keys(store.table, i) for i in old] == [[]] * len(old)


class CrashingTable:
    """The notifications table, except that the process dies at its `crash_at`-th delete."""

    def __init__(self, table: TableClient, crash_at: int) -> None:
        self._table = table
        self._crash_at = crash_at
        self.deletes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    async def _count(self) -> None:
        if self.deletes == self._crash_at:
            raise SystemExit("the process died here (injected fault)")
        self.deletes += 1

    async def submit_transaction(self, operations: Any) -> Any:
        await self._count()
        return await self._table.submit_transaction(operations)

    async def delete_entity(self, *args: Any, **kwargs: Any) -> None:
        await self._count()
        await self._table.delete_entity(*args, **kwargs)


async def test_a_crash_between_any_two_deletes_then_a_new_run_converges(app_env: dict[str, str]) -> None:
    ctx = await get_context()
    store, now = ctx.notifications, datetime.now(UTC)
    await plant_other_partitions(store.table)
    young = await fabricate(store, now, key="young")
    # Deletes of a full run: key row + 2 transactions, then key row + 1 transaction.
    deletes_per_run = 5
    for crash_at in range(deletes_per_run):
        old = {
            await fabricate(
                store, now - timedelta(days=40), outcome_rows=150, key=f"big-{crash_at}"
            ): f"big-{crash_at}",
            await fabricate(store, now - timedelta(days=35), key=f"small-{crash_at}"): f"small-{crash_at}",
        }
        crashing = CrashingTable(store.table, crash_at)
        with pytest.raises(SystemExit):
            await expire_notifications(NotificationStore(crashing), now, RETENTION)  # type: ignore[arg-type]
        assert crashing.deletes == crash_at
        # Even half done, a remembered key never names a notification that is gone.
        for notification_id, key in old.items():
            if await row_keys(store.table, idempotency_partition(key)):
                assert await get_status_code(notification_id) == 200

        report = await expire_notifications(store, now, RETENTION)

        assert report.finished
        for notification_id, key in old.items():
            assert await row_keys(store.table, notification_id) == []
            assert await row_keys(store.table, idempotency_partition(key)) == []
        assert await get_status_code(young) == 200
        assert await row_keys(store.table, idempotency_partition("young")) == [IDEMPOTENCY_ROW_KEY]
        await assert_other_partitions_untouched(store.table)
        # Next round's notifications are older than this run's cursor: start again from the beginning.
        await store.table.delete_entity("~system", "retention-cursor")


async def test_the_timer_is_registered_and_deletes_with_the_configured_retention(app_env: dict[str, str]) -> None:
    (binding,) = [b.get_dict_repr() for b in FUNCTIONS["expire_old_notifications"].get_bindings()]
    assert binding["type"] == "timerTrigger"
    assert binding["schedule"] == "%RETENTION_SCHEDULE%"
    assert binding["runOnStartup"] is False
    sample = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    assert len(sample["RETENTION_SCHEDULE"].split()) == 6
    assert sample["NOTIFICATION_RETENTION_DAYS"] == "30"

    ctx = await get_context()
    now = datetime.now(UTC)
    old = await fabricate(ctx.notifications, now - timedelta(days=31))
    kept = await fabricate(ctx.notifications, now - timedelta(days=29))
    await call_function("expire_old_notifications", timer=TimerRequest(past_due=False))
    assert await get_status_code(old) == 404
    assert await get_status_code(kept) == 200


def test_retention_is_a_setting_of_at_least_eight_days() -> None:
    assert load_settings({}).notification_retention == timedelta(days=30)
    assert load_settings({"NOTIFICATION_RETENTION_DAYS": "90"}).notification_retention == timedelta(days=90)
    # Shorter than a scheduled send (7 days ahead) plus its retries: refused.
    for bad in ("7", "0", "-1", "thirty"):
        with pytest.raises(ConfigurationError, match="NOTIFICATION_RETENTION_DAYS"):
            load_settings({"NOTIFICATION_RETENTION_DAYS": bad})


async def test_an_expired_single_send_costs_one_transaction(app_env: dict[str, str], device: dict[str, Any]) -> None:
    ctx = await get_context()
    for _ in range(10):
        assert (await call_http("send_notification", "POST", "notifications", single_send(device["id"]))).status == 202
    await finish_background_sends()
    before = metrics.snapshot()
    report = await expire_notifications(ctx.notifications, datetime.now(UTC) + RETENTION + timedelta(days=1), RETENTION)
    after = metrics.snapshot()
    storage = {
        k: after[k] - before.get(k, 0) for k in after if k.startswith("storage.") and after[k] != before.get(k, 0)
    }
    assert report.notifications == 10 and report.rows == 10
    # One delete transaction per notification; per run, one page of the range query and the cursor's read and write.
    assert storage == {"storage.table.post": 10, "storage.table.get": 2, "storage.table.patch": 1}
