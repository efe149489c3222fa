"""The sandbox's local certificate authority and server TLS context."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import trustme

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


def load_or_create_ca(state_dir: Path) -> trustme.CA:
    """Reuse the CA in `state_dir` if there is one, so clients that already trust it keep working
    across sandbox restarts; otherwise create one and write it there."""
    state_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = state_dir / CA_FILE, state_dir / CA_KEY_FILE
    if cert_path.is_file() and key_path.is_file():
        try:
            return trustme.CA.from_pem(cert_path.read_bytes(), key_path.read_bytes())
        except ValueError:
            pass  # unreadable or foreign files: replace them
    ca = trustme.CA(organization_name="pushfuncs local sandbox")
    _write_private(key_path, ca.private_key_pem.bytes())
    ca.cert_pem.write_to_path(str(cert_path))
    return ca


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # WNS speaks HTTP/1.1 only; advertising it keeps HTTP/2-capable clients on 1.1.
    context.set_alpn_protocols(["http/1.1"])
    ca.issue_cert(*SERVER_NAMES).configure_cert(context)
    return context


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
