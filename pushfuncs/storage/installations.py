"""The channel registry: one entity per installation, keyed for single-partition point reads.

The registry is the truth. Besides what the API shows, an entity carries `IndexKeys`, every
index partition that may hold a row of this installation (a superset while an update is under
way), and may be a tombstone (`Deleted`): a removal that has not yet deleted its index rows.
Every write is conditional (insert-if-absent or `If-Match` on the ETag read), so two writers
never both win; `pushfuncs/services/registration.py` states the invariant built on this.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from pushfuncs.templates import Template

ROW_KEY = "installation"


@dataclass
class Installation:
    installation_id: str
    channel_uri: str
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    user_id: str | None = None
    tags: list[str] = field(default_factory=list)
    templates: dict[str, Template] = field(default_factory=dict)
    # "<tenant id>/<object id>" of the device that registered it; None when a backend did.
    owner: str | None = None
    etag: str | None = None
    # Index partitions that may hold a row of this installation (see the module docstring).
    index_keys: frozenset[str] = frozenset()
    # A tombstone: removed, its index rows not yet all deleted. Never shown by `get`.
    deleted: bool = False

    def is_live(self, now: datetime) -> bool:
        return self.expires_at > now

    def to_api(self) -> dict[str, object]:
        return {
            "installationId": self.installation_id,
            "channelUri": self.channel_uri,
            "userId": self.user_id,
            "tags": self.tags,
            "expiresAt": _iso(self.expires_at),
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
            "templates": {name: t.to_dict() for name, t in self.templates.items()},
        }


def templates_to_json(templates: dict[str, Template]) -> str:
    return json.dumps({name: t.to_dict() for name, t in templates.items()}, separators=(",", ":"))


def templates_from_json(text: object) -> dict[str, Template]:
    data = json.loads(str(text or "{}"))
    return {name: Template.from_dict(spec) for name, spec in data.items()}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _to_entity(installation: Installation) -> dict[str, object]:
    entity: dict[str, object] = {
        "PartitionKey": installation.installation_id,
        "RowKey": ROW_KEY,
        "ChannelUri": installation.channel_uri,
        "UserId": installation.user_id or "",
        "Tags": json.dumps(installation.tags),
        "Templates": templates_to_json(installation.templates),
        "ExpiresAt": installation.expires_at,
        "CreatedAt": installation.created_at,
        "UpdatedAt": installation.updated_at,
        "Owner": installation.owner or "",
        "IndexKeys": json.dumps(sorted(installation.index_keys), separators=(",", ":")),
        "Deleted": installation.deleted,
    }
    return entity


def _from_entity(entity: dict[str, object]) -> Installation:
    return Installation(
        installation_id=str(entity["PartitionKey"]),
        channel_uri=str(entity["ChannelUri"]),
        user_id=str(entity.get("UserId") or "") or None,
        tags=json.loads(str(entity.get("Tags") or "[]")),
        templates=templates_from_json(entity.get("Templates")),
        expires_at=entity["ExpiresAt"],  # type: ignore[arg-type]
        created_at=entity["CreatedAt"],  # type: ignore[arg-type]
        updated_at=entity["UpdatedAt"],  # type: ignore[arg-type]
        owner=str(entity.get("Owner") or "") or None,
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,  # type: ignore[attr-defined]
        index_keys=frozenset(json.loads(str(entity.get("IndexKeys") or "[]"))),
        deleted=bool(entity.get("Deleted")),
    )


class InstallationStore:
    """Installations in one table: PartitionKey = installation id, RowKey = "installation"."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def get(self, installation_id: str) -> Installation | None:
        """The registered installation (a tombstone counts as absent)."""
        found = await self.read(installation_id)
        return None if found is None or found.deleted else found

    async def read(self, installation_id: str) -> Installation | None:
        """The entity as stored, tombstone included, with its ETag."""
        try:
            entity = await self._table.get_entity(installation_id, ROW_KEY)
        except ResourceNotFoundError:
            return None
        return _from_entity(entity)

    async def create(self, installation: Installation) -> str | None:
        """Insert if absent; the new ETag, or None if the entity exists already."""
        try:
            metadata = await self._table.create_entity(_to_entity(installation))
        except ResourceExistsError:
            return None
        return _etag(metadata)

    async def replace(self, installation: Installation, etag: str) -> str | None:
        """Replace if unchanged since read (`If-Match`); the new ETag, or None if it changed."""
        try:
            metadata = await self._table.update_entity(
                _to_entity(installation),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return _etag(metadata)

    async def delete(self, installation_id: str, etag: str) -> bool:
        """Delete if unchanged since read (`If-Match`); False if it changed or is gone."""
        try:
            await self._table.delete_entity(
                installation_id, ROW_KEY, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    async def ping(self) -> None:
        """One cheap read that proves the table is reachable."""
        with contextlib.suppress(ResourceNotFoundError):
            await self._table.get_entity("~health", ROW_KEY)


def _etag(metadata: object) -> str:
    return str(metadata.get("etag")) if isinstance(metadata, dict) else ""
