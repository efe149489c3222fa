"""Start-up options of the sandbox and the fixed identifiers it imitates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WNS_RESOURCE = "https://wns.windows.com"
VAULT_RESOURCE = "https://vault.azure.net"
# The push backend's own API, as an app registration exposing a scope (devices) and an app role
# (backends); its tokens are signed JWTs, verified by the app against the published keys.
API_CLIENT_ID = "sandbox-api-client-id"
API_APP_ID_URI = "api://sandbox-api"
API_DEVICE_SCOPE = "Installations.ReadWrite"
API_BACKEND_ROLE = "Installations.Manage"
# The Windows app: a public client that signs users in and asks for the API's scope.
DEVICE_CLIENT_ID = "sandbox-device-app"
# Any user name signs in with this password (resource owner password grant), e.g. alice, bob.
USER_PASSWORD = "sandbox-user-password"
KNOWN_RESOURCES = (WNS_RESOURCE, VAULT_RESOURCE)

DEFAULT_PORT = 8443
DEFAULT_STATE_DIR = ".sandbox"
DEFAULT_TENANT_ID = "sandbox-tenant"
DEFAULT_CLIENT_ID = "sandbox-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_IDENTITY_HEADER = "sandbox-identity-header"
DEFAULT_MANAGED_IDENTITY_CLIENT_ID = "sandbox-managed-identity"
# Entra ID's sample token response for WNS shows 86399 s (one day minus a second).
DEFAULT_TOKEN_LIFETIME = 86399
DEFAULT_CHANNEL_LIFETIME = 30 * 24 * 3600
DEFAULT_INBOX_LIMIT = 1000


@dataclass(frozen=True)
class SandboxConfig:
    """Everything the sandbox is started with; immutable while it runs."""

    port: int = DEFAULT_PORT
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    host: str = "localhost"
    tenant_id: str = DEFAULT_TENANT_ID
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    identity_header: str = DEFAULT_IDENTITY_HEADER
    managed_identity_client_id: str = DEFAULT_MANAGED_IDENTITY_CLIENT_ID
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    # Microsoft's documented WNS token response carries expires_in as a string.
    expires_in_as_string: bool = True
    client_certificates: tuple[Path, ...] = ()
    inbox_limit: int = DEFAULT_INBOX_LIMIT
    access_log: bool = False
