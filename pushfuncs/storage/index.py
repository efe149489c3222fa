"""Secondary indexes of the registry, in one table: by expiry day, by user and by tag.

Rows are written before the registry entity and stale rows removed after it, so a crash can
leave an extra row (repaired when read: every reader checks the registry) but never a missing
one. Expiry, broadcast and tag partitions are sharded by installation id, so that one day or one
popular tag is not one hot partition (Table Storage serves about 2,000 entities/s per partition)
and no partition grows with the whole audience.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from pushfuncs.storage.installations import Installation, templates_from_json, templates_to_json
from pushfuncs.templates import Template

EXPIRY_SHARDS = 16
MAX_BATCH = 100


def shard_of(installation_id: str, shards: int = EXPIRY_SHARDS) -> int:
    return int.from_bytes(hashlib.sha256(installation_id.encode()).digest()[:4], "big") % shards


def expiry_partition(day: str, shard: int) -> str:
    return f"exp-{day}-{shard:02d}"


def expiry_key(installation_id: str, expires_at: datetime) -> tuple[str, str]:
    return expiry_partition(expires_at.strftime("%Y%m%d"), shard_of(installation_id)), installation_id


ALL_SHARDS = 16


def all_partition(shard: int) -> str:
    """Every installation, sharded: the source of a broadcast."""
    return f"all-{shard:02d}"


def user_partition(user_id: str) -> str:
    return f"user-{user_id}"


TAG_SHARDS = 16


def tag_partition(tag: str, shard: int) -> str:
    return f"tag-{tag}-{shard:02d}"


def tag_partitions(tag: str) -> list[str]:
    """Every partition of a tag, in shard order: the sources of a tag send."""
    return [tag_partition(tag, shard) for shard in range(TAG_SHARDS)]


def tag_key(tag: str, installation_id: str) -> tuple[str, str]:
    return tag_partition(tag, shard_of(installation_id, TAG_SHARDS)), installation_id


def tag_of_partition(partition: str) -> str:
    return partition.removeprefix("tag-")[:-3]


def index_keys(installation: Installation) -> set[tuple[str, str]]:
    """Every index row (PartitionKey, RowKey) an installation should have."""
    keys = {
        expiry_key(installation.installation_id, installation.expires_at),
        (all_partition(shard_of(installation.installation_id, ALL_SHARDS)), installation.installation_id),
    }
    if installation.user_id:
        keys.add((user_partition(installation.user_id), installation.installation_id))
    keys.update(tag_key(tag, installation.installation_id) for tag in installation.tags)
    return keys


@dataclass(frozen=True)
class IndexRow:
    partition: str
    installation_id: str
    channel_uri: str
    expires_at: datetime
    tags: frozenset[str] = frozenset()
    templates: dict[str, Template] = field(default_factory=dict)


class IndexStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def put(self, installation: Installation, keys: Iterable[tuple[str, str]]) -> None:
        for pk, rk in keys:
            await self._table.upsert_entity(
                {
                    "PartitionKey": pk,
                    "RowKey": rk,
                    "ChannelUri": installation.channel_uri,
                    "ExpiresAt": installation.expires_at,
                    "Tags": json.dumps(installation.tags),
                    "Templates": templates_to_json(installation.templates),
                }
            )

    async def remove(self, keys: Iterable[tuple[str, str]]) -> None:
        for pk, rk in keys:
            with contextlib.suppress(ResourceNotFoundError):
                await self._table.delete_entity(pk, rk)

    async def remove_batch(self, partition: str, installation_ids: list[str]) -> None:
        """Delete rows of one partition in entity-group transactions of up to 100."""
        for start in range(0, len(installation_ids), MAX_BATCH):
            chunk = installation_ids[start : start + MAX_BATCH]
            await self._table.submit_transaction(
                [("delete", {"PartitionKey": partition, "RowKey": rk}) for rk in chunk]
            )

    async def page(self, partition: str, after: str | None, limit: int) -> tuple[list[IndexRow], str | None]:
        """Up to `limit` rows of a partition with RowKey > `after`; and the next `after` (None at the end)."""
        query = "PartitionKey eq @pk and RowKey gt @after"
        rows: list[IndexRow] = []
        entities: AsyncIterator[dict[str, object]] = self._table.query_entities(
            query, parameters={"pk": partition, "after": after or ""}, results_per_page=min(limit, 1000)
        )
        async for entity in entities:
            rows.append(
                IndexRow(
                    partition=partition,
                    installation_id=str(entity["RowKey"]),
                    channel_uri=str(entity.get("ChannelUri") or ""),
                    expires_at=entity["ExpiresAt"],  # type: ignore[arg-type]
                    tags=frozenset(json.loads(str(entity.get("Tags") or "[]"))),
                    templates=templates_from_json(entity.get("Templates")),
                )
            )
            if len(rows) >= limit:
                return rows, rows[-1].installation_id
        return rows, None
