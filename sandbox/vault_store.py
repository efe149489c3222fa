"""In-memory secret versions, shaped like Key Vault's SecretBundle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from . import ids

RECOVERY_LEVEL = "Recoverable+Purgeable"
RECOVERABLE_DAYS = 90


@dataclass(slots=True)
class SecretVersion:
    version: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    not_before: int | None
    expires: int | None
    created: int
    updated: int

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"enabled": self.enabled}
        if self.not_before is not None:
            attrs["nbf"] = self.not_before
        if self.expires is not None:
            attrs["exp"] = self.expires
        attrs |= {
            "created": self.created,
            "updated": self.updated,
            "recoveryLevel": RECOVERY_LEVEL,
            "recoverableDays": RECOVERABLE_DAYS,
        }
        return attrs


@dataclass(slots=True)
class Secret:
    name: str
    versions: list[SecretVersion] = field(default_factory=list)
    deleted_at: int | None = None

    @property
    def latest(self) -> SecretVersion:
        return self.versions[-1]

    def version(self, version: str) -> SecretVersion | None:
        return next((v for v in self.versions if v.version == version), None)


class SecretStore:
    """Secret names are case-insensitive in Key Vault; the first spelling is kept for ids."""

    def __init__(self) -> None:
        self._secrets: dict[str, Secret] = {}

    def find(self, name: str, *, deleted: bool = False) -> Secret | None:
        secret = self._secrets.get(name.lower())
        if secret is None or (secret.deleted_at is not None) != deleted:
            return None
        return secret

    def is_deleted(self, name: str) -> bool:
        return self.find(name, deleted=True) is not None

    def add_version(
        self,
        name: str,
        value: str,
        content_type: str | None,
        tags: dict[str, str] | None,
        enabled: bool,
        not_before: int | None,
        expires: int | None,
    ) -> tuple[Secret, SecretVersion]:
        secret = self._secrets.setdefault(name.lower(), Secret(name))
        now = int(time.time())
        version = SecretVersion(ids.secret_version(), value, content_type, tags, enabled, not_before, expires, now, now)
        secret.versions.append(version)
        return secret, version

    def live(self) -> list[Secret]:
        return [s for s in self._secrets.values() if s.deleted_at is None]

    def deleted(self) -> list[Secret]:
        return [s for s in self._secrets.values() if s.deleted_at is not None]

    def purge(self, name: str) -> None:
        self._secrets.pop(name.lower(), None)

    def clear(self) -> None:
        self._secrets.clear()


def bundle(base: str, secret: Secret, version: SecretVersion, *, with_value: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if with_value:
        body["value"] = version.value
    body["id"] = f"{base}/secrets/{secret.name}/{version.version}"
    if version.content_type is not None:
        body["contentType"] = version.content_type
    body["attributes"] = version.attributes()
    if version.tags is not None:
        body["tags"] = version.tags
    return body


def list_item(base: str, secret: Secret, version: SecretVersion, *, versioned: bool) -> dict[str, Any]:
    item = bundle(base, secret, version, with_value=False)
    if not versioned:
        item["id"] = f"{base}/secrets/{secret.name}"
    return item


def deleted_bundle(base: str, secret: Secret) -> dict[str, Any]:
    assert secret.deleted_at is not None
    body = bundle(base, secret, secret.latest, with_value=False)
    return {
        "recoveryId": f"{base}/deletedsecrets/{secret.name}",
        "deletedDate": secret.deleted_at,
        "scheduledPurgeDate": secret.deleted_at + RECOVERABLE_DAYS * 86400,
        **body,
    }
