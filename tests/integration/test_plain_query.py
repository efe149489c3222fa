"""The fan-out's page reads against Azurite: plain JSON rows through the table client's pipeline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from azure.core.exceptions import ResourceNotFoundError

from pushfuncs.context import get_context
from pushfuncs.storage.index import IndexStore
from pushfuncs.storage.plain_query import query_rows, quoted

PARTITION = "tag-it's-03"  # a quote in the key: the filter literal must escape it
EXPIRES = datetime(2026, 12, 30, 19, 0, 0, 123000, tzinfo=UTC)


async def _seed(count: int) -> IndexStore:
    index = (await get_context()).index
    table = index._table
    for start in range(0, count, 100):
        operations = [
            (
                "upsert",
                {
                    "PartitionKey": PARTITION,
                    "RowKey": f"inst-{i:05d}",
                    "ChannelUri": f"https://db5.notify.windows.com/?token={i}",
                    "ExpiresAt": EXPIRES,
                    "Tags": '["a", "b"]',
                },
            )
            for i in range(start, min(count, start + 100))
        ]
        await table.submit_transaction(operations)
    await table.upsert_entity({"PartitionKey": "tag-other-03", "RowKey": "inst-00000", "ExpiresAt": EXPIRES})
    return index


async def test_every_row_of_a_partition_across_continuations(app_env: dict[str, str]) -> None:
    index = await _seed(2_345)
    rows = [
        row
        async for row in query_rows(
            index._table, f"PartitionKey eq {quoted(PARTITION)}", ["RowKey", "ExpiresAt"], top=1000
        )
    ]
    assert [row["RowKey"] for row in rows] == [f"inst-{i:05d}" for i in range(2_345)]
    assert set(rows[0]) == {"RowKey", "ExpiresAt"}  # only what was selected, no metadata


async def test_pages_carry_the_columns_converted(app_env: dict[str, str]) -> None:
    index = await _seed(1_500)
    first, after = await index.page(PARTITION, None, 1000, columns=["Tags"])
    assert len(first) == 1000 and after == "inst-00999"
    row = first[0]
    assert (row.installation_id, row.channel_uri) == ("inst-00000", "https://db5.notify.windows.com/?token=0")
    assert row.expires_at == EXPIRES and row.tags == frozenset({"a", "b"})
    rest, after = await index.page(PARTITION, after, 1000, columns=["Tags"])
    assert [r.installation_id for r in rest] == [f"inst-{i:05d}" for i in range(1000, 1500)]
    assert after is None
    assert await index.page(PARTITION, "inst-01499", 10) == ([], None)


@pytest.mark.parametrize("after", ["z%27 or PartitionKey ne %27", "z' or PartitionKey ne '", "z&$top=1#", "z+b%41"])
async def test_filter_values_reach_the_service_as_data(app_env: dict[str, str], after: str) -> None:
    """Quotes, escapes and URL syntax in a value never change the query (another partition's rows)."""
    table = (await get_context()).index._table
    for partition in ("user-alice", "user-bob", "user-a%27&b+c"):
        await table.upsert_entity({"PartitionKey": partition, "RowKey": "inst-1", "ExpiresAt": EXPIRES})
    query = f"PartitionKey eq {quoted('user-alice')} and RowKey gt {quoted(after)}"
    assert [row async for row in query_rows(table, query)] == []
    mine = [row async for row in query_rows(table, f"PartitionKey eq {quoted('user-a%27&b+c')}", ["PartitionKey"])]
    assert mine == [{"PartitionKey": "user-a%27&b+c"}]


async def test_a_missing_table_is_not_found(app_env: dict[str, str]) -> None:
    table = (await get_context()).index._table
    missing = table.__class__.from_connection_string(app_env["AzureWebJobsStorage"], "nosuchtable0")
    async with missing:
        with pytest.raises(ResourceNotFoundError):
            [row async for row in query_rows(missing, "PartitionKey eq 'x'")]
