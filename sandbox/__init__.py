"""WNS sandbox: a local HTTPS stand-in for WNS, Entra ID's token endpoint, the App Service
managed-identity endpoint and Key Vault secrets.

A development and test tool only: never deployed, never used in Azure. See sandbox/README.md.
"""

from .client import SandboxClient
from .config import SandboxConfig
from .server import SandboxHandle, app_settings, start_sandbox

__all__ = ["SandboxClient", "SandboxConfig", "SandboxHandle", "app_settings", "start_sandbox"]
