"""Secondary indexes of the registry, in one table: by expiry day, by user, by tag, and all.

An index row is keyed (partition, installation id) and carries what fan-out needs to send
(channel, expiry, tags, templates), so a tag send reads pages of rows, not one registry entity
per device. Rows are written only by `pushfuncs/services/registration.py`, which keeps them
equal to the registry (the invariant and its proof are stated there). Expiry, broadcast and
tag partitions are sharded by installation id, so that one day or one popular tag is not one
hot partition (Table Storage serves about 2,000 entities/s per partition) and no partition
grows with the whole audience.

The same table holds `pending-<shard>` markers: one per registry operation under way, written
before its first write and deleted after its last, so an operation that died halfway is found
and finished by the repair timer (`pending_markers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from pushfuncs.storage.installations import Installation, templates_from_json, templates_to_json
from pushfuncs.storage.plain_query import RowQuery, query_rows, quoted
from pushfuncs.templates import Template

EXPIRY_SHARDS = 16


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


def index_partitions(installation: Installation) -> frozenset[str]:
    """Every index partition that should hold a row of this installation (none for a tombstone)."""
    if installation.deleted:
        return frozenset()
    installation_id = installation.installation_id
    partitions = {
        expiry_key(installation_id, installation.expires_at)[0],
        all_partition(shard_of(installation_id, ALL_SHARDS)),
    }
    if installation.user_id:
        partitions.add(user_partition(installation.user_id))
    partitions.update(tag_key(tag, installation_id)[0] for tag in installation.tags)
    return frozenset(partitions)


PENDING_SHARDS = 16
# Separates the installation id from the operation in a marker's RowKey ('~' is not in ids).
_MARKER_SEPARATOR = "~"


def pending_partition(shard: int) -> str:
    return f"pending-{shard:02d}"


@dataclass(frozen=True)
class PendingMarker:
    installation_id: str
    operation: str
    started_at: datetime
    partitions: frozenset[str]


@dataclass(frozen=True)
class IndexRow:
    partition: str
    installation_id: str
    channel_uri: str
    expires_at: datetime
    tags: frozenset[str] = frozenset()
    templates: dict[str, Template] = field(default_factory=dict)


class IndexStore:
    def __init__(self, table: TableClient, query: RowQuery | None = None) -> None:
        self._table = table
        # How pages are read: plain JSON rows of `table` (another source where there is no service).
        self._query: RowQuery = query or functools.partial(query_rows, table)

    async def put(self, installation: Installation, partitions: Iterable[str]) -> None:
        """Upsert this installation's row, as it is now, into each partition (concurrently)."""
        row = {
            "RowKey": installation.installation_id,
            "ChannelUri": installation.channel_uri,
            "ExpiresAt": installation.expires_at,
            "Tags": json.dumps(installation.tags),
            "Templates": templates_to_json(installation.templates),
        }
        await asyncio.gather(*(self._table.upsert_entity({**row, "PartitionKey": pk}) for pk in partitions))

    async def remove(self, installation_id: str, partitions: Iterable[str]) -> None:
        """Delete this installation's row from each partition (concurrently; absent rows are fine)."""

        async def delete(partition: str) -> None:
            with contextlib.suppress(ResourceNotFoundError):
                await self._table.delete_entity(partition, installation_id)

        await asyncio.gather(*(delete(pk) for pk in partitions))

    async def mark_pending(self, marker: PendingMarker) -> None:
        """Record an operation under way (or the partitions it may now write to)."""
        await self._table.upsert_entity(
            {
                "PartitionKey": pending_partition(shard_of(marker.installation_id, PENDING_SHARDS)),
                "RowKey": f"{marker.installation_id}{_MARKER_SEPARATOR}{marker.operation}",
                "StartedAt": marker.started_at,
                "Partitions": json.dumps(sorted(marker.partitions), separators=(",", ":")),
            }
        )

    async def clear_pending(self, installation_id: str, operation: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await self._table.delete_entity(
                pending_partition(shard_of(installation_id, PENDING_SHARDS)),
                f"{installation_id}{_MARKER_SEPARATOR}{operation}",
            )

    async def pending_markers(self, shard: int, limit: int) -> list[PendingMarker]:
        """Up to `limit` markers of one shard (operations under way, or dead halfway)."""
        markers: list[PendingMarker] = []
        rows: AsyncIterator[dict[str, object]] = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": pending_partition(shard)}, results_per_page=min(limit, 1000)
        )
        async for row in rows:
            installation_id, _, operation = str(row["RowKey"]).rpartition(_MARKER_SEPARATOR)
            markers.append(
                PendingMarker(
                    installation_id=installation_id,
                    operation=operation,
                    started_at=row["StartedAt"],  # type: ignore[arg-type]
                    partitions=frozenset(json.loads(str(row.get("Partitions") or "[]"))),
                )
            )
            if len(markers) >= limit:
                break
        return markers

    async def page(
        self, partition: str, after: str | None, limit: int, columns: Iterable[str] | None = None
    ) -> tuple[list[IndexRow], str | None]:
        """Up to `limit` rows of a partition with RowKey > `after`; and the next `after` (None at
        the end). `columns`: read only these besides the keys (a send to a tag needs no templates)."""
        rows: list[IndexRow] = []
        select = ["RowKey", "ChannelUri", "ExpiresAt", *columns] if columns is not None else None
        # The fan-out's hot path: rows as plain JSON, only the columns read converted.
        query = f"PartitionKey eq {quoted(partition)} and RowKey gt {quoted(after or '')}"
        async with contextlib.aclosing(self._query(query, select, limit)) as entities:
            async for entity in entities:
                tags = entity.get("Tags")
                rows.append(
                    IndexRow(
                        partition=partition,
                        installation_id=str(entity["RowKey"]),
                        channel_uri=str(entity.get("ChannelUri") or ""),
                        expires_at=datetime.fromisoformat(entity["ExpiresAt"]),
                        tags=frozenset(json.loads(tags)) if tags else frozenset(),
                        templates=templates_from_json(entity.get("Templates")),
                    )
                )
                if len(rows) >= limit:
                    return rows, rows[-1].installation_id
        return rows, None
