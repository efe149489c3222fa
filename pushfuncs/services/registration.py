"""Register, read and remove installations, keeping the index equal to the registry.

The invariant (tests/integration/test_registry_concurrency.py, tests/integration/test_registry_faults.py):
once every PUT, DELETE, 404/410 removal and sweep of an installation has returned, its index
rows are exactly `index_partitions` of its registry entity, each carrying the entity's channel,
tags and templates; no entity (or a tombstone) means no rows. So every send path, which reads
either the registry (installationId, installationIds) or the index (user, tag, expression,
broadcast), reaches an installation exactly when `GET` finds it, at its stored channel.

How it is kept, with nothing but Table Storage's own guarantees:
1. Every change of the registry entity is conditional (insert-if-absent, or `If-Match` on the
   ETag read), and it records in `IndexKeys` every partition that may hold a row: the old set
   plus the new one. A removal writes a tombstone (`Deleted`) rather than deleting the entity,
   so the rows to delete stay known.
2. Then `_settle_index` loops: read the entity; upsert the rows it wants; delete every other row
   it knows of (`IndexKeys`, plus every row this operation itself wrote); then commit with
   `If-Match` on the ETag it read: shrink `IndexKeys` to what is wanted, or delete the tombstone,
   or, when nothing needs recording, re-read and compare the ETag. If the entity changed
   meanwhile, another writer is at work and the loop goes round again, repairing whatever it
   wrote from the stale state. An operation returns only after a commit that proves the rows it
   wrote match an entity state no one had changed in between; a writer that started from an
   older state fails its own commit and repairs its own rows, so the last operation to return
   leaves the index equal to the registry.
3. An operation that dies halfway (a crash, a storage error) leaves a `pending-<shard>` marker
   naming the partitions it may have written; a retry of any write to that installation, or
   the repair run of the sweep timer (`repair_pending`), settles it again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pushfuncs.errors import ApiError, NotOwner
from pushfuncs.storage.index import PENDING_SHARDS, IndexStore, PendingMarker, index_partitions
from pushfuncs.storage.installations import Installation, InstallationStore
from pushfuncs.validation import InstallationRequest

# Rounds of read-and-commit before giving up with 409; each lost round means another writer of
# the same installation committed, so this is only reached under a storm of writes to one id.
MAX_ROUNDS = 25
# A marker older than this belongs to an operation that died (operations take well under a second).
PENDING_GRACE = timedelta(minutes=2)


class ConcurrentUpdate(ApiError):
    def __init__(self) -> None:
        super().__init__(409, "Conflict", "the installation was changed concurrently; retry the request")


async def register_installation(
    store: InstallationStore,
    index: IndexStore,
    installation_id: str,
    request: InstallationRequest,
    now: datetime,
    owner: str | None = None,
) -> tuple[Installation, bool]:
    """Create or replace the installation; returns it and whether it was created.

    With `owner` (a signed-in device) the installation is recorded as that device's, and an id
    registered to anyone else raises `NotOwner`. A backend (no owner) keeps the stored owner.
    """
    return await update_installation(store, index, installation_id, lambda _: request, now, owner)


async def update_installation(
    store: InstallationStore,
    index: IndexStore,
    installation_id: str,
    change: Callable[[Installation | None], InstallationRequest],
    now: datetime,
    owner: str | None = None,
) -> tuple[Installation, bool]:
    """Write `change(current)` (current: the registered installation, or None) as the
    installation, atomically: if anyone writes in between, `change` is applied again to what
    they wrote (so a JSON Patch never loses a concurrent update). `change` may raise an
    `ApiError` (e.g. a patch that does not apply); nothing is written then. Returns the
    installation and whether it was created."""
    operation = _Operation(store, index, installation_id, now)
    for _ in range(MAX_ROUNDS):
        existing = await store.read(installation_id)
        live = existing is not None and not existing.deleted
        if owner is not None and live and existing.owner != owner:  # type: ignore[union-attr]
            await operation.abandon()
            raise NotOwner()
        try:
            request = change(existing if live else None)
        except Exception:
            await operation.abandon()
            raise
        fresh = Installation(
            installation_id=installation_id,
            channel_uri=request.channel_uri,
            user_id=request.user_id,
            tags=request.tags,
            templates=request.templates,
            expires_at=request.expires_at,
            created_at=existing.created_at if live else now,  # type: ignore[union-attr]
            updated_at=now,
            owner=owner if owner is not None else (existing.owner if live else None),  # type: ignore[union-attr]
        )
        wanted = index_partitions(fresh)
        known = existing.index_keys if existing is not None else frozenset()
        fresh = replace(fresh, index_keys=known | wanted)
        await operation.begin(fresh.index_keys)
        if existing is None:
            etag = await store.create(fresh)
        else:
            etag = await store.replace(fresh, existing.etag or "")
        if etag is None:
            continue  # someone else wrote first: decide again on what they wrote
        await operation.settle(replace(fresh, etag=etag))
        return replace(fresh, etag=etag, index_keys=wanted), not live
    await operation.abandon()
    raise ConcurrentUpdate()


async def remove_installation(
    store: InstallationStore,
    index: IndexStore,
    installation_id: str,
    only_if_channel: str | None = None,
    owner: str | None = None,
    only_if_expired_at: datetime | None = None,
) -> bool:
    """Remove the installation and its index rows; True if this call removed it.

    Conditions are checked against the entity as read and enforced by `If-Match`, so a PUT in
    between wins: `only_if_channel` (a 404/410 from WNS for that channel), `owner` (a device may
    remove only its own), `only_if_expired_at` (the sweep: only if expired by then). A retry
    after a removal that died halfway finishes it (and answers False: already removed).
    """
    operation = _Operation(store, index, installation_id, datetime.now(UTC))
    for _ in range(MAX_ROUNDS):
        existing = await store.read(installation_id)
        if existing is None:
            await operation.abandon()
            return False
        if existing.deleted:
            await operation.begin(existing.index_keys)
            await operation.settle(existing)
            return False
        unwanted = (
            (only_if_channel is not None and existing.channel_uri != only_if_channel)
            or (owner is not None and existing.owner != owner)
            or (only_if_expired_at is not None and existing.expires_at > only_if_expired_at)
        )
        if unwanted:
            await operation.abandon()
            return False
        await operation.begin(existing.index_keys)
        tombstone = replace(existing, deleted=True, updated_at=operation.started_at)
        etag = await store.replace(tombstone, existing.etag or "")
        if etag is None:
            continue
        await operation.settle(replace(tombstone, etag=etag))
        return True
    await operation.abandon()
    raise ConcurrentUpdate()


async def repair_installation(
    store: InstallationStore, index: IndexStore, installation_id: str, partitions: frozenset[str], now: datetime
) -> None:
    """Make the index of one installation equal to its registry entity again, given index
    partitions that may hold rows of it (found by a reader, or named by a dead operation's marker)."""
    operation = _Operation(store, index, installation_id, now)
    await operation.begin(partitions)
    operation.written |= partitions  # treat them as ours: settle deletes them unless wanted
    await operation.settle(None)


async def repair_pending(store: InstallationStore, index: IndexStore, now: datetime, limit: int = 500) -> int:
    """Finish the registry operations that died halfway (their markers are older than the
    grace period); returns how many were repaired."""
    repaired = 0
    for shard in range(PENDING_SHARDS):
        for marker in await index.pending_markers(shard, limit):
            if now - marker.started_at < PENDING_GRACE:
                continue
            await repair_installation(store, index, marker.installation_id, marker.partitions, now)
            await index.clear_pending(marker.installation_id, marker.operation)
            repaired += 1
    return repaired


class _Operation:
    """One registry operation on one installation: its marker and the index rows it wrote."""

    def __init__(self, store: InstallationStore, index: IndexStore, installation_id: str, now: datetime) -> None:
        self._store = store
        self._index = index
        self.installation_id = installation_id
        self.started_at = now
        self.name = secrets.token_hex(6)
        self.marked: frozenset[str] | None = None
        self.written: frozenset[str] = frozenset()

    async def begin(self, partitions: frozenset[str]) -> None:
        """Before any write: the marker names every partition this operation may write."""
        if self.marked is not None and partitions <= self.marked:
            return
        self.marked = (self.marked or frozenset()) | partitions
        await self._index.mark_pending(
            PendingMarker(self.installation_id, self.name, self.started_at, self.marked | self.written)
        )

    async def abandon(self) -> None:
        """Stop before writing anything: drop the marker if an earlier round wrote one (its
        conditional write lost, so this operation wrote no row)."""
        if self.marked is not None:
            await self._index.clear_pending(self.installation_id, self.name)

    async def settle(self, known: Installation | None) -> None:
        """Bring the index to the registry's state (module docstring, step 2), then drop the marker.

        `known`: the entity as this operation just wrote it (saves the first read)."""
        current = known
        for round_number in range(MAX_ROUNDS):
            if round_number or current is None:
                current = await self._store.read(self.installation_id)
            if current is None:
                await self._index.remove(self.installation_id, self.written)
                if await self._store.read(self.installation_id) is None:
                    break
                continue
            wanted = index_partitions(current)
            await self.begin(wanted)
            await self._index.put(current, wanted)
            self.written |= wanted
            await self._index.remove(self.installation_id, (current.index_keys | self.written) - wanted)
            if current.deleted:
                if await self._store.delete(self.installation_id, current.etag or ""):
                    break
            elif current.index_keys != wanted:
                if await self._store.replace(replace(current, index_keys=wanted), current.etag or "") is not None:
                    break
            else:
                again = await self._store.read(self.installation_id)
                if again is not None and again.etag == current.etag:
                    break
        else:
            raise ConcurrentUpdate()
        await self._index.clear_pending(self.installation_id, self.name)
