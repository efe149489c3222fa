"""The channel registry: one entity per installation, keyed for single-partition point reads."""

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
    etag: str | None = None

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
    return {
        "PartitionKey": installation.installation_id,
        "RowKey": ROW_KEY,
        "ChannelUri": installation.channel_uri,
        "UserId": installation.user_id or "",
        "Tags": json.dumps(installation.tags),
        "Templates": templates_to_json(installation.templates),
        "ExpiresAt": installation.expires_at,
        "CreatedAt": installation.created_at,
        "UpdatedAt": installation.updated_at,
    }


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
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,  # type: ignore[attr-defined]
    )


class InstallationStore:
    """Installations in one table: PartitionKey = installation id, RowKey = "installation"."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def get(self, installation_id: str) -> Installation | None:
        try:
            entity = await self._table.get_entity(installation_id, ROW_KEY)
        except ResourceNotFoundError:
            return None
        return _from_entity(entity)

    async def create(self, installation: Installation) -> bool:
        """Insert; False if it exists already (then call `replace`)."""
        try:
            await self._table.create_entity(_to_entity(installation))
        except ResourceExistsError:
            return False
        return True

    async def replace(self, installation: Installation, etag: str) -> bool:
        """Replace if unchanged since read; False if someone else changed it meanwhile."""
        try:
            await self._table.update_entity(
                _to_entity(installation),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    async def delete_if_unchanged(self, installation: Installation) -> bool:
        """Delete only if nobody changed it since it was read."""
        try:
            await self._table.delete_entity(
                installation.installation_id,
                ROW_KEY,
                etag=installation.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    async def ping(self) -> None:
        """One cheap read that proves the table is reachable."""
        with contextlib.suppress(ResourceNotFoundError):
            await self._table.get_entity("~health", ROW_KEY)
