"""The token signing keys of Entra ID tenants, from their OpenID metadata, cached per tenant.

- Fetched with aiohttp in the worker's event loop: PyJWKClient is blocking, and one blocking
  call stalls every delivery in the worker. PyJWT only verifies, with the keys given to it.
- `{authority}/{tenant}/v2.0/.well-known/openid-configuration` names the `jwks_uri`; both are
  fetched over https, trusting SSL_CERT_FILE when set (the local sandbox), never following a
  redirect, with a timeout.
- Keys are kept for `ttl` (12 hours, like Microsoft.IdentityModel's automatic refresh). A
  token signed with a kid we do not know triggers a refetch (key rollover), at most once per
  `min_refetch` (5 minutes, Microsoft.IdentityModel's refresh interval) per tenant, so forged
  kids cannot make us fetch on every request; one fetch at a time per tenant.
- When a refetch fails, the keys we have are kept; with none, `SigningKeysUnavailable`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt

logger = logging.getLogger(__name__)

KEYS_TTL_SECONDS = 12 * 3600.0
MIN_REFETCH_SECONDS = 300.0
_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=5)
_MAX_DOCUMENT_BYTES = 256 * 1024


class SigningKeysUnavailable(Exception):
    """A tenant's signing keys could not be fetched and none are cached."""


@dataclass
class _TenantKeys:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SigningKeys:
    """Signing keys by tenant and kid; one instance per event loop."""

    def __init__(
        self,
        authority: str,
        ttl: float | None = None,
        min_refetch: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._authority = authority.rstrip("/")
        self._ttl = KEYS_TTL_SECONDS if ttl is None else ttl
        self._min_refetch = MIN_REFETCH_SECONDS if min_refetch is None else min_refetch
        self._clock = clock
        self._tenants: dict[str, _TenantKeys] = {}

    async def get(self, tenant: str, kid: str) -> jwt.PyJWK | None:
        """The tenant's key with this kid, or None if the tenant does not publish it."""
        entry = self._tenants.setdefault(tenant, _TenantKeys())
        if kid in entry.keys and not self._expired(entry):
            return entry.keys[kid]
        if self._may_fetch(entry):
            attempted = entry.attempted_at
            async with entry.lock:
                if entry.attempted_at == attempted:  # nobody fetched while we waited
                    await self._refresh(tenant, entry)
        return entry.keys.get(kid)

    def _expired(self, entry: _TenantKeys) -> bool:
        return entry.fetched_at is None or self._clock() - entry.fetched_at >= self._ttl

    def _may_fetch(self, entry: _TenantKeys) -> bool:
        return entry.attempted_at is None or self._clock() - entry.attempted_at >= self._min_refetch

    async def _refresh(self, tenant: str, entry: _TenantKeys) -> None:
        entry.attempted_at = self._clock()
        try:
            keys = await self._fetch(tenant)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            logger.warning("could not fetch the signing keys of tenant %s: %s", tenant, type(error).__name__)
            if not entry.keys:
                raise SigningKeysUnavailable(f"no signing keys for tenant {tenant}") from error
            return
        entry.keys, entry.fetched_at = keys, self._clock()
        logger.info("fetched %d signing keys of tenant %s", len(keys), tenant)

    async def _fetch(self, tenant: str) -> dict[str, jwt.PyJWK]:
        connector = aiohttp.TCPConnector(ssl=_ssl_context())
        async with aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT) as session:
            metadata = await _get_json(session, f"{self._authority}/{tenant}/v2.0/.well-known/openid-configuration")
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
                raise ValueError("the OpenID metadata has no https jwks_uri")
            document = await _get_json(session, jwks_uri)
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in document.get("keys", []):
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[str(jwk["kid"])] = jwt.PyJWK(jwk, algorithm="RS256")
            except (KeyError, jwt.PyJWKError, jwt.InvalidKeyError):
                continue
        return keys


def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)


async def _get_json(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url, allow_redirects=False) as response:
        if response.status != 200:
            raise ValueError(f"{response.status} from the identity provider")
        body = await response.content.read(_MAX_DOCUMENT_BYTES + 1)
    if len(body) > _MAX_DOCUMENT_BYTES:
        raise ValueError("the identity provider's document is too large")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("the identity provider's document is not a JSON object")
    return document
