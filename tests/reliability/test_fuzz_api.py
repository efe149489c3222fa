"""Fuzz the HTTP API from its OpenAPI document with schemathesis, over real HTTP.

The app runs on the in-process LocalFunctionsHost (in a thread with its own event loop, since
schemathesis calls it synchronously) against the shared test Azurite and WNS sandbox. Every
operation gets a bounded, derandomized set of generated requests, authenticated with the
function key: no answer may be a 5xx, and every answer must match the document's schema for
its status code.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from devhost.azurite import Azurite
from devhost.host import LocalFunctionsHost
from tests.harness import app_environment
from tests.reliability.support import ROOT, fresh_app, host_root

SCHEMA = schemathesis.openapi.from_path(ROOT / "pushfuncs" / "openapi.json")
MAX_EXAMPLES = 25


class ThreadedHost:
    """A LocalFunctionsHost on an event loop of its own, in a daemon thread."""

    def __init__(self, host: LocalFunctionsHost) -> None:
        self.host = host
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-host", daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.host.start(), self.loop).result(timeout=60)

    def stop(self) -> None:
        from pushfuncs.context import close_context

        async def shutdown() -> None:
            await self.host.stop()
            await close_context()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()


@pytest.fixture(scope="module")
def running_host(azurite: Azurite, sandbox: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedHost]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    with app_environment(azurite, sandbox) as values:
        threaded = ThreadedHost(
            LocalFunctionsHost(
                fresh_app(), root=host_root(directory / "root"), settings=values, port=0, keys_path=directory / "keys"
            )
        )
        threaded.start()
        try:
            yield threaded
        finally:
            threaded.stop()


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_answers_5xx_and_matches_its_schema(case: schemathesis.Case, running_host: ThreadedHost) -> None:
    keys = running_host.host.keys
    assert keys is not None
    case.call_and_validate(
        base_url=f"{running_host.host.base_url}/api",
        headers={"x-functions-key": keys.default_function_key},
        checks=[not_a_server_error, response_schema_conformance],
        timeout=30,
    )
