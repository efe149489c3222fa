"""One typed settings object, read from the environment lazily (never at import time)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from pushfuncs.channel_uri import HostPattern, parse_allowed_hosts


class ConfigurationError(RuntimeError):
    """A setting is missing or unusable; the message names it."""


@dataclass(frozen=True)
class Settings:
    storage_connection_string: str | None
    storage_account_name: str | None
    storage_client_id: str | None
    delivery_queue: str
    fanout_queue: str
    installations_table: str
    notifications_table: str
    index_table: str
    delivery_max_attempts: int
    wns_tenant_id: str
    wns_client_id: str
    wns_client_secret: str
    wns_client_certificate_path: str
    wns_authority_host: str
    allowed_hosts: tuple[HostPattern, ...]
    key_vault_url: str
    token_secret_name: str
    # Devices signing in with Entra ID (pushfuncs/auth.py); off unless set.
    device_sign_in_enabled: bool = False
    api_authority_host: str = "https://login.microsoftonline.com"
    api_audiences: tuple[str, ...] = ()
    api_allowed_tenants: tuple[str, ...] = ()
    notification_retention: timedelta = timedelta(days=30)

    @property
    def poison_queue(self) -> str:
        return f"{self.delivery_queue}-poison"


def _get(env: Mapping[str, str], name: str, default: str = "") -> str:
    value = env.get(name, default).strip()
    if value.startswith("@Microsoft.KeyVault("):
        # An unresolved Key Vault reference: the platform could not read the secret.
        raise ConfigurationError(f"setting {name} is an unresolved Key Vault reference")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(env, name, str(default))
    try:
        return int(raw)
    except ValueError as error:
        raise ConfigurationError(f"setting {name} must be an integer, not {raw!r}") from error


# Scheduled sends fire up to 7 days after acceptance and are retried after that: a notification
# must outlive its last write, or a late outcome would bring back part of a deleted one.
MIN_RETENTION_DAYS = 8


def _retention(env: Mapping[str, str]) -> timedelta:
    days = _int(env, "NOTIFICATION_RETENTION_DAYS", 30)
    if days < MIN_RETENTION_DAYS:
        raise ConfigurationError(
            f"setting NOTIFICATION_RETENTION_DAYS must be at least {MIN_RETENTION_DAYS}, not {days}"
        )
    return timedelta(days=days)


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = _get(env, name, "false").lower()
    if raw not in ("true", "false", "1", "0", ""):
        raise ConfigurationError(f"setting {name} must be true or false, not {raw!r}")
    return raw in ("true", "1")


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in _get(env, name).split(",") if item.strip())


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build `Settings` from a mapping of app settings (the process environment in the app)."""
    connection = _get(env, "AzureWebJobsStorage") or None
    if connection == "UseDevelopmentStorage=true":
        raise ConfigurationError(
            "AzureWebJobsStorage=UseDevelopmentStorage=true is not supported by every storage SDK;"
            " use the full Azurite connection string from local.settings.sample.json"
        )
    try:
        allowed = parse_allowed_hosts(env.get("WNS_ALLOWED_HOSTS"))
    except ValueError as error:
        raise ConfigurationError(str(error)) from error
    return Settings(
        storage_connection_string=connection,
        storage_account_name=_get(env, "AzureWebJobsStorage__accountName") or None,
        storage_client_id=_get(env, "AzureWebJobsStorage__clientId") or None,
        delivery_queue=_get(env, "DELIVERY_QUEUE", "wns-delivery"),
        fanout_queue=_get(env, "FANOUT_QUEUE", "wns-fanout"),
        installations_table=_get(env, "INSTALLATIONS_TABLE", "installations"),
        notifications_table=_get(env, "NOTIFICATIONS_TABLE", "notifications"),
        index_table=_get(env, "INDEX_TABLE", "installationindex"),
        delivery_max_attempts=max(1, _int(env, "DELIVERY_MAX_ATTEMPTS", 8)),
        wns_tenant_id=_get(env, "WNS_TENANT_ID"),
        wns_client_id=_get(env, "WNS_CLIENT_ID"),
        wns_client_secret=_get(env, "WNS_CLIENT_SECRET"),
        wns_client_certificate_path=_get(env, "WNS_CLIENT_CERTIFICATE_PATH"),
        wns_authority_host=_get(env, "WNS_AUTHORITY_HOST", "https://login.microsoftonline.com"),
        allowed_hosts=allowed,
        key_vault_url=_get(env, "KEY_VAULT_URL"),
        token_secret_name=_get(env, "WNS_TOKEN_SECRET_NAME", "wns-access-token"),
        notification_retention=_retention(env),
        device_sign_in_enabled=_bool(env, "DEVICE_SIGN_IN_ENABLED"),
        api_authority_host=_get(env, "API_AUTHORITY_HOST", "https://login.microsoftonline.com").rstrip("/"),
        api_audiences=_list(env, "API_AUDIENCES"),
        api_allowed_tenants=_list(env, "API_ALLOWED_TENANTS"),
    )


@functools.cache
def get_settings() -> Settings:
    """The app's settings, read once per process from the environment."""
    return load_settings(os.environ)


def reset_settings() -> None:
    """Forget the cached settings (after the environment changed)."""
    get_settings.cache_clear()


@contextmanager
def applied_settings(values: Mapping[str, str]) -> Iterator[None]:
    """Set app settings in this process's environment for a while (tests, benchmark), then put
    back what was there; the cached settings are re-read on both sides."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    reset_settings()
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        reset_settings()
