"""Shared fixtures: Azurite and the WNS sandbox, started once per test session and stopped after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devhost.azurite import Azurite, start_azurite
from sandbox import SandboxClient, start_sandbox


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with start_azurite() as running:
        yield running


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    handle = start_sandbox(port=0, state_dir=Path(tmp_path_factory.mktemp("sandbox")))
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
