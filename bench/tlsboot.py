"""Trust the sandbox's CA before anything imports aiohttp.

aiohttp builds its default TLS context when it is first imported, from SSL_CERT_FILE as it is
then; so the CA is created here, into the sandbox's state directory, and the standard variables
are pointed at it before the app, the sandbox or any HTTP client is imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import trustme

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
TLS_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")

# The variables as they were before the benchmark changed them (for package installs, which
# must verify the registry's certificate, not the sandbox's).
ORIGINAL_ENVIRONMENT: dict[str, str | None] = {}


def trust_sandbox_ca(state_dir: Path) -> Path:
    """Create the sandbox CA in `state_dir` and make it the trusted CA of this process."""
    if "aiohttp" in sys.modules:
        raise RuntimeError("aiohttp was imported before the sandbox CA was trusted")
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="pushfuncs benchmark sandbox")
    ca_path = state_dir / CA_FILE
    ca.cert_pem.write_to_path(str(ca_path))
    key_path = state_dir / CA_KEY_FILE
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(ca.private_key_pem.bytes())
    for name in TLS_VARIABLES:
        ORIGINAL_ENVIRONMENT.setdefault(name, os.environ.get(name))
    os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = str(ca_path)
    return ca_path


def issue_server_cert(state_dir: Path, *names: str) -> tuple[Path, Path]:
    """A server certificate signed by the sandbox CA (for the benchmark's own small servers)."""
    ca = trustme.CA.from_pem((state_dir / CA_FILE).read_bytes(), (state_dir / CA_KEY_FILE).read_bytes())
    leaf = ca.issue_cert(*names)
    cert_path, key_path = state_dir / "shim-cert.pem", state_dir / "shim-key.pem"
    with open(cert_path, "wb") as handle:
        for blob in leaf.cert_chain_pems:
            handle.write(blob.bytes())
    leaf.private_key_pem.write_to_path(str(key_path))
    return cert_path, key_path


def registry_environment() -> dict[str, str]:
    """The environment for package installs: the machine's own trust settings, not the sandbox CA."""
    env = dict(os.environ)
    for name in TLS_VARIABLES:
        original = ORIGINAL_ENVIRONMENT.get(name)
        if original is None:
            env.pop(name, None)
        else:
            env[name] = original
    return env
