"""Everything the running sandbox remembers; touched only from the server's event loop."""

from __future__ import annotations

from aiohttp import web

from .assertion import CertificateKeys
from .channels import ChannelStore
from .config import SandboxConfig
from .faults import FaultMix
from .signing import ApiTokenIssuer
from .stats import Stats
from .tokens import TokenStore
from .vault_store import SecretStore


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.certificates = CertificateKeys.load(config.client_certificates)
        self.public_url = f"https://{config.host}:{config.port}"
        self.tokens = TokenStore()
        self.channels = ChannelStore(config.inbox_limit)
        self.secrets = SecretStore()
        self.stats = Stats()
        self.fault_mix: FaultMix | None = None
        self.api_tokens = ApiTokenIssuer()

    def set_port(self, port: int) -> None:
        self.public_url = f"https://{self.config.host}:{port}"

    def reset(self) -> None:
        self.tokens.clear()
        self.channels.clear()
        self.secrets.clear()
        self.stats = Stats()
        self.fault_mix = None
        # Signing keys survive a reset, as a tenant's do: apps keep the JWKS they cached.
        self.api_tokens.next_shape = None


STATE_KEY = web.AppKey("sandbox_state", SandboxState)


def state_of(request: web.Request) -> SandboxState:
    return request.app[STATE_KEY]
