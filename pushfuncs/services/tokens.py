"""The WNS access token: from Entra ID by client credentials, shared through Key Vault.

Each process keeps the token in memory until shortly before it expires. With `KEY_VAULT_URL`
set, processes share one token through a Key Vault secret (with its expiry), so a scaled-out
app asks Entra ID once per token lifetime, not once per instance and cold start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceNotFoundError

from pushfuncs.config import ConfigurationError, Settings
from pushfuncs.metrics import metrics
from pushfuncs.wns import WNS_SCOPE

logger = logging.getLogger(__name__)

# Stop using a token this long before it expires (Entra ID tokens live about 24 hours).
USE_MARGIN_SECONDS = 600
# The timer replaces the shared token when less than this is left.
REFRESH_WINDOW_SECONDS = 6 * 3600


class TokenUnavailable(RuntimeError):
    """No WNS token could be had (Entra ID refused or could not be reached)."""


class EntraTokenSource:
    """Client-credentials grant against Entra ID, scope https://wns.windows.com/.default."""

    def __init__(self, settings: Settings) -> None:
        if not settings.wns_tenant_id or not settings.wns_client_id:
            raise ConfigurationError("set WNS_TENANT_ID and WNS_CLIENT_ID")
        if not settings.wns_client_secret and not settings.wns_client_certificate_path:
            raise ConfigurationError("set WNS_CLIENT_SECRET or WNS_CLIENT_CERTIFICATE_PATH")
        self._settings = settings

    def _credential(self):  # type: ignore[no-untyped-def]
        from azure.identity.aio import CertificateCredential, ClientSecretCredential

        s = self._settings
        # Instance discovery would ask the public cloud about the authority; the token
        # endpoint itself is all the client-credentials grant needs.
        common = {"authority": s.wns_authority_host, "disable_instance_discovery": True}
        if s.wns_client_certificate_path:
            return CertificateCredential(
                s.wns_tenant_id, s.wns_client_id, certificate_path=s.wns_client_certificate_path, **common
            )
        return ClientSecretCredential(s.wns_tenant_id, s.wns_client_id, s.wns_client_secret, **common)

    async def fetch(self) -> AccessToken:
        """A new token. A fresh credential each time: our own cache decides when to ask."""
        metrics.add("token.entra.requests")
        try:
            async with self._credential() as credential:
                return await credential.get_token(WNS_SCOPE)
        except Exception as error:  # azure-identity raises several types; the reason is what matters
            metrics.add("token.entra.failures")
            raise TokenUnavailable(f"Entra ID gave no WNS token: {type(error).__name__}: {error}") from error


class TokenVault:
    """The shared token as a Key Vault secret whose `expires_on` is the token's expiry."""

    def __init__(self, vault_url: str, secret_name: str) -> None:
        from azure.identity.aio import DefaultAzureCredential
        from azure.keyvault.secrets.aio import SecretClient

        self._credential = DefaultAzureCredential()
        self._client = SecretClient(vault_url, self._credential, verify_challenge_resource=False)
        self._name = secret_name

    async def read(self) -> AccessToken | None:
        metrics.add("token.keyvault.reads")
        try:
            secret = await self._client.get_secret(self._name)
        except ResourceNotFoundError:
            return None
        expires = secret.properties.expires_on
        if not secret.value or expires is None:
            return None
        return AccessToken(secret.value, int(expires.timestamp()))

    async def write(self, token: AccessToken) -> None:
        from datetime import UTC, datetime

        metrics.add("token.keyvault.writes")
        await self._client.set_secret(
            self._name,
            token.token,
            content_type="application/jwt",
            expires_on=datetime.fromtimestamp(token.expires_on, UTC),
            tags={"purpose": "wns-access-token"},
        )

    async def close(self) -> None:
        await self._client.close()
        await self._credential.close()


@dataclass
class _Cached:
    token: AccessToken


class WnsTokenProvider:
    """Hands out a valid WNS token; one refresh at a time per process (no stampede)."""

    def __init__(
        self,
        source: EntraTokenSource,
        vault: TokenVault | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._vault = vault
        self._clock = clock
        self._cached: AccessToken | None = None
        self._lock = asyncio.Lock()

    def _usable(self, token: AccessToken | None, margin: float = USE_MARGIN_SECONDS) -> bool:
        return token is not None and token.expires_on - margin > self._clock()

    async def get_token(self) -> str:
        if self._usable(self._cached):
            return self._cached.token  # type: ignore[union-attr]
        async with self._lock:
            if not self._usable(self._cached):
                self._cached = await self._load(rejected=None)
            return self._cached.token  # type: ignore[union-attr]

    async def refresh_after_rejection(self, rejected: str) -> str:
        """WNS refused `rejected` (401): use a newer shared token, or get a fresh one."""
        async with self._lock:
            if self._usable(self._cached) and self._cached.token != rejected:  # type: ignore[union-attr]
                return self._cached.token  # type: ignore[union-attr]
            self._cached = await self._load(rejected=rejected)
            return self._cached.token

    async def _load(self, rejected: str | None) -> AccessToken:
        if self._vault is not None:
            try:
                shared = await self._vault.read()
            except Exception as error:  # Key Vault down must not stop deliveries
                logger.warning("reading the shared WNS token from Key Vault failed: %s", type(error).__name__)
                shared = None
            if self._usable(shared) and shared.token != rejected:  # type: ignore[union-attr]
                return shared  # type: ignore[return-value]
        token = await self._source.fetch()
        await self._share(token)
        return token

    async def _share(self, token: AccessToken) -> None:
        if self._vault is None:
            return
        try:
            await self._vault.write(token)
        except Exception as error:
            logger.warning("storing the WNS token in Key Vault failed: %s", type(error).__name__)

    async def refresh_shared_token(self, force: bool = False) -> bool:
        """Timer work: replace the shared token well before it expires. True if replaced."""
        async with self._lock:
            current = await self._vault.read() if self._vault is not None else self._cached
            if not force and self._usable(current, REFRESH_WINDOW_SECONDS):
                self._cached = current
                return False
            token = await self._source.fetch()
            if self._vault is not None:
                await self._vault.write(token)
            self._cached = token
            return True

    async def close(self) -> None:
        if self._vault is not None:
            await self._vault.close()
