"""Register, read and remove installations (a device's channel and what targets it),
keeping the secondary indexes consistent with the registry."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from pushfuncs.errors import ApiError
from pushfuncs.storage.index import IndexStore, index_keys
from pushfuncs.storage.installations import Installation, InstallationStore
from pushfuncs.validation import InstallationRequest

MAX_CONFLICT_RETRIES = 5


async def register_installation(
    store: InstallationStore,
    index: IndexStore,
    installation_id: str,
    request: InstallationRequest,
    now: datetime,
) -> tuple[Installation, bool]:
    """Create or replace the installation; returns it and whether it was created."""
    fresh = Installation(
        installation_id=installation_id,
        channel_uri=request.channel_uri,
        user_id=request.user_id,
        tags=request.tags,
        templates=request.templates,
        expires_at=request.expires_at,
        created_at=now,
        updated_at=now,
    )
    wanted = index_keys(fresh)
    # Index rows first: a crash leaves an extra row (checked on read), never a missing one.
    await index.put(fresh, wanted)
    for _ in range(MAX_CONFLICT_RETRIES):
        existing = await store.get(installation_id)
        if existing is None:
            if await store.create(fresh):
                return fresh, True
            continue
        updated = replace(fresh, created_at=existing.created_at)
        if await store.replace(updated, existing.etag or "*"):
            await index.remove(index_keys(existing) - wanted)
            return updated, False
    raise ApiError(409, "Conflict", "the installation was changed concurrently; retry the request")


async def remove_installation(
    store: InstallationStore, index: IndexStore, installation_id: str, only_if_channel: str | None = None
) -> bool:
    """Delete the installation and its index rows. With `only_if_channel`, only if that is
    still its channel (a re-registration since the send wins). True if it was deleted."""
    existing = await store.get(installation_id)
    if existing is None:
        return False
    if only_if_channel is not None and existing.channel_uri != only_if_channel:
        return False
    if not await store.delete_if_unchanged(existing):
        return False
    await index.remove(index_keys(existing))
    return True
