"""Helpers for the reliability tests: bulk registration, an Azurite that keeps its data on disk,
a fresh FunctionApp for an in-process host, and a host root with small queue timings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import httpx

from devhost.azurite import azurite_binary, connection_string, free_port
from sandbox import SandboxClient

ROOT = Path(__file__).resolve().parents[2]


def toast(text: str) -> str:
    return f"<toast><visual><binding template='ToastGeneric'><text>{text}</text></binding></visual></toast>"


async def register_many(specs: list[tuple[str, str, list[str]]], concurrency: int = 50) -> None:
    """Register (installation id, channel URI, tags) through the registration service."""
    from pushfuncs.context import get_context
    from pushfuncs.services.registration import register_installation
    from pushfuncs.validation import InstallationRequest

    ctx = await get_context()
    now = datetime.now(UTC)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(spec: tuple[str, str, list[str]]) -> None:
        installation_id, channel, tags = spec
        request = InstallationRequest(channel, None, sorted(tags), now + timedelta(days=30))
        async with semaphore:
            await register_installation(ctx.installations, ctx.index, installation_id, request, now)

    await asyncio.gather(*(one(s) for s in specs))


def payload_counts(sandbox_client: SandboxClient, channel_ids: list[str]) -> dict[str, Counter[str]]:
    """Per channel id: how many times each payload reached its inbox."""
    return {cid: Counter(d["payload"] for d in sandbox_client.inbox(cid)) for cid in channel_ids}


def fresh_app(*blueprints: str) -> func.FunctionApp:
    """The app's blueprints on a new FunctionApp (get_functions() may be called once per app)."""
    import importlib

    names = blueprints or (
        "api_installations",
        "api_notifications",
        "api_audience",
        "api_feedback",
        "api_health",
        "api_openapi",
        "delivery_trigger",
        "fanout_trigger",
    )
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for name in names:
        app.register_functions(importlib.import_module(f"pushfuncs.{name}").bp)
    return app


def host_root(directory: Path, visibility_timeout: str = "00:00:01") -> Path:
    """A host root holding the project's host.json with a short visibility timeout after a failure."""
    directory.mkdir(parents=True, exist_ok=True)
    document = json.loads((ROOT / "host.json").read_text())
    document["extensions"]["queues"]["visibilityTimeout"] = visibility_timeout
    (directory / "host.json").write_text(json.dumps(document))
    return directory


def _listening(port: int) -> bool:
    with contextlib.closing(socket.socket()) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class PersistentAzurite:
    """Azurite keeping its data in `location`, so it survives a stop and a start on the same ports."""

    location: Path
    blob_port: int
    queue_port: int
    table_port: int
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def on_free_ports(cls, location: Path) -> PersistentAzurite:
        location.mkdir(parents=True, exist_ok=True)
        return cls(location, free_port(), free_port(), free_port())

    @property
    def ports(self) -> tuple[int, int, int]:
        return self.blob_port, self.queue_port, self.table_port

    @property
    def connection_string(self) -> str:
        return connection_string(*self.ports)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            raise RuntimeError("Azurite is already running")
        args = [azurite_binary(), "--silent", "--location", str(self.location), "--skipApiVersionCheck"]
        args += ["--disableTelemetry"]
        for service, port in zip(("blob", "queue", "table"), self.ports, strict=True):
            args += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
            args += [f"--{service}KeepAliveTimeout", "60"]
        log = open(self.location / "azurite.log", "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=self.location, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not all(_listening(p) for p in self.ports):
            if self.process.poll() is not None:
                raise RuntimeError(f"Azurite exited with {self.process.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Azurite did not listen on {self.ports} within {timeout}s")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (Azurite saves its metadata on the way out), then wait until the ports are free."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
        deadline = time.monotonic() + 10
        while any(_listening(p) for p in self.ports) and time.monotonic() < deadline:
            time.sleep(0.05)

    def log_tail(self) -> str:
        path = self.location / "azurite.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def counts_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


@contextlib.asynccontextmanager
async def local_host_client(settings: dict[str, str], directory: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app on an in-process local Functions host, and an HTTP client that holds its function key."""
    from devhost.host import LocalFunctionsHost

    host = LocalFunctionsHost(
        fresh_app(), root=host_root(directory / "root"), settings=settings, port=0, keys_path=directory / "keys"
    )
    await host.start()
    try:
        assert host.keys is not None
        headers = {"x-functions-key": host.keys.default_function_key}
        async with httpx.AsyncClient(base_url=f"{host.base_url}/api", headers=headers, timeout=60) as client:
            yield client
    finally:
        await host.stop()
