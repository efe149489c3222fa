"""Shared fixtures: Azurite and the WNS sandbox, started once per test session and stopped after."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

# aiohttp builds its default TLS context when it is first imported, from SSL_CERT_FILE as it
# is then. So the sandbox's CA must exist, and be trusted, before anything imports aiohttp:
# the app trusts it exactly as it would in a deployment, through the standard variables.
SANDBOX_STATE = Path(tempfile.mkdtemp(prefix="pushfuncs-test-sandbox-"))
_ca = trustme.CA(organization_name="pushfuncs test sandbox")
_ca.cert_pem.write_to_path(str(SANDBOX_STATE / "ca.pem"))
_ca.private_key_pem.write_to_path(str(SANDBOX_STATE / "ca-key.pem"))
os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = str(SANDBOX_STATE / "ca.pem")

from devhost.azurite import Azurite, start_azurite  # noqa: E402
from sandbox import SandboxClient, start_sandbox  # noqa: E402


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with start_azurite() as running:
        yield running


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    handle = start_sandbox(port=0, state_dir=SANDBOX_STATE)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def sandbox_client(sandbox: object) -> Iterator[SandboxClient]:
    client = SandboxClient(sandbox.url, sandbox.ca_path)  # type: ignore[attr-defined]
    yield client


@pytest.fixture
async def app_env(azurite: Azurite, sandbox: object) -> AsyncIterator[dict[str, str]]:
    """The app configured against Azurite and the sandbox; its clients closed afterwards."""
    from pushfuncs.context import close_context
    from tests.harness import app_environment

    with app_environment(azurite, sandbox) as values:
        yield values
        await close_context()
