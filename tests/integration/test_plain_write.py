"""Outcome rows written with a body we build, read back through the SDK, against Azurite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.core.exceptions import ResourceNotFoundError

from pushfuncs.context import get_context
from pushfuncs.storage.notifications import TargetOutcome
from pushfuncs.storage.plain_write import entity_json, merge_row

WHEN = datetime(2026, 11, 30, 21, 5, 7, 123456, tzinfo=UTC)


async def test_a_row_reads_back_as_the_sdk_would_have_written_it(app_env: dict[str, str]) -> None:
    table = (await get_context()).notifications.table
    row_key = "b:it's 50%&+= ü:a001"  # a quote, URL syntax and non-ASCII in the key ('/#?' are not allowed)
    entity = {"PartitionKey": "n'1", "RowKey": row_key, "UpdatedAt": WHEN, "O0": '{"x":"\\"é"}', "N": 7}
    await merge_row(table, entity)  # type: ignore[arg-type]
    read = await table.get_entity("n'1", row_key)
    assert dict(read) == entity
    assert read["UpdatedAt"] == WHEN  # an Edm.DateTime, to the microsecond


async def test_a_second_write_merges_into_the_row(app_env: dict[str, str]) -> None:
    table = (await get_context()).notifications.table
    await merge_row(table, {"PartitionKey": "n2", "RowKey": "r", "O0": "first", "Kept": True})
    await merge_row(table, {"PartitionKey": "n2", "RowKey": "r", "O0": "second"})
    read = await table.get_entity("n2", "r")
    assert (read["O0"], read["Kept"]) == ("second", True)


async def test_a_missing_table_is_not_found(app_env: dict[str, str]) -> None:
    table = (await get_context()).notifications.table
    gone = table.__class__.from_connection_string(app_env["AzureWebJobsStorage"], "NoSuchTable")
    async with gone:
        with pytest.raises(ResourceNotFoundError):
            await merge_row(gone, {"PartitionKey": "p", "RowKey": "r", "O0": "x"})


def test_dates_are_written_in_utc_and_other_types_refused() -> None:
    paris = timezone(timedelta(hours=1))
    body = entity_json({"PartitionKey": "p", "RowKey": "r", "At": datetime(2026, 1, 1, 1, 0, tzinfo=paris)})
    assert body["At"] == "2026-01-01T00:00:00.000000Z" and body["At@odata.type"] == "Edm.DateTime"
    for value in (1.5, 2**31, None, b"x"):
        with pytest.raises(TypeError):
            entity_json({"PartitionKey": "p", "RowKey": "r", "V": value})  # type: ignore[dict-item]


async def test_recorded_outcomes_read_back(app_env: dict[str, str]) -> None:
    store = (await get_context()).notifications
    outcomes = [
        TargetOutcome(f"inst-{i}", "delivered", 1, WHEN, status_code=200, wns_status="received", msg_id=f"m{i}")
        for i in range(100)
    ]
    outcomes.append(TargetOutcome("inst-x", "failed", 2, WHEN, reason='WNS 400: "bad" \u2028', status_code=400))
    await store.record_outcomes("n-read", "m00000", 1, outcomes, WHEN, chunk="abc000")
    assert await store.settled_targets("n-read", "m00000", 1, "") == {o.installation_id for o in outcomes}
    [row] = [row async for row in store.table.query_entities("PartitionKey eq 'n-read'")]
    assert row["UpdatedAt"] == WHEN
    stored = {i: TargetOutcome.from_compact(i, data, WHEN) for i, data in json.loads(row["O0"]).items()}
    assert stored == {o.installation_id: o for o in outcomes}
