"""Register, read and remove installations (a device's channel and what targets it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from pushfuncs.errors import ApiError
from pushfuncs.storage.installations import Installation, InstallationStore
from pushfuncs.validation import InstallationRequest

MAX_CONFLICT_RETRIES = 5


async def register_installation(
    store: InstallationStore, installation_id: str, request: InstallationRequest, now: datetime
) -> tuple[Installation, bool]:
    """Create or replace the installation; returns it and whether it was created."""
    fresh = Installation(
        installation_id=installation_id,
        channel_uri=request.channel_uri,
        user_id=request.user_id,
        tags=request.tags,
        expires_at=request.expires_at,
        created_at=now,
        updated_at=now,
    )
    for _ in range(MAX_CONFLICT_RETRIES):
        existing = await store.get(installation_id)
        if existing is None:
            if await store.create(fresh):
                return fresh, True
            continue
        updated = replace(fresh, created_at=existing.created_at)
        if await store.replace(updated, existing.etag or "*"):
            return updated, False
    raise ApiError(409, "Conflict", "the installation was changed concurrently; retry the request")
