"""The services a benchmark runs against: Azurite, and the WNS sandbox in a process of its own.

The sandbox runs in its own process (not a thread of the benchmark), so it never competes with
the code being measured for the interpreter lock; its CPU time is read from /proc for each run,
to tell when the sandbox, not the client, was the limit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from devhost.azurite import Azurite, free_port, start_azurite
from sandbox import SandboxClient
from sandbox import config as sandbox_defaults

ROOT = Path(__file__).resolve().parent.parent
READY_PREFIX = "WNS sandbox ready at "


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass
class SandboxProcess:
    """`python -m sandbox` on a free port, with the benchmark's CA."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    ca_path: Path
    tenant_id: str = sandbox_defaults.DEFAULT_TENANT_ID
    client_id: str = sandbox_defaults.DEFAULT_CLIENT_ID
    client_secret: str = sandbox_defaults.DEFAULT_CLIENT_SECRET
    identity_header: str = sandbox_defaults.DEFAULT_IDENTITY_HEADER
    _control: SandboxClient | None = field(default=None, repr=False)

    @property
    def control(self) -> SandboxClient:
        if self._control is None:
            self._control = SandboxClient(self.url, self.ca_path, timeout=60.0)
        return self._control

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def sends(self) -> int:
        return int(self.control.stats()["wnsSends"]["total"])

    def token(self) -> str:
        response = self.control.request_token(self.tenant_id, self.client_id, self.client_secret)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_sandbox_process(state_dir: Path, timeout: float = 30.0) -> SandboxProcess:
    """Start the sandbox with the CA already in `state_dir`; return once it accepts requests."""
    port = free_port()
    log_path = state_dir / "sandbox.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox",
                "--port",
                str(port),
                "--state-dir",
                str(state_dir),
                # One delivery per channel is all the benchmarks read back; keep the inboxes small.
                "--inbox-limit",
                "4",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while True:
        lines = log_path.read_text(errors="replace").splitlines()
        ready = [line for line in lines if line.startswith(READY_PREFIX)]
        if ready:
            url = ready[0][len(READY_PREFIX) :].split(" ", 1)[0].strip()
            break
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {process.returncode}: {' / '.join(lines[-5:])}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the sandbox did not start in time")
        time.sleep(0.05)
    return SandboxProcess(process=process, url=url, port=port, ca_path=state_dir / "ca.pem")


def client_ssl_context(ca_path: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_path))


def encoded_url(uri: str) -> URL:
    """A channel URI as sent on the wire: yarl must not re-quote `%2f` and friends."""
    return URL(uri, encoded=True)


async def create_channels(sandbox: SandboxProcess, count: int, concurrency: int = 32) -> dict[str, str]:
    """Ask the sandbox for `count` channels; returns channel URI -> sandbox channel id, in order."""
    uris: dict[str, str] = {}
    connector = aiohttp.TCPConnector(ssl=client_ssl_context(sandbox.ca_path), limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        remaining = iter(range(count))

        async def worker() -> None:
            for _ in remaining:
                async with session.post(f"{sandbox.url}/_sandbox/channels", json={}) as response:
                    response.raise_for_status()
                    body: dict[str, Any] = await response.json()
                uris[str(body["channelUri"])] = str(body["channelId"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return uris


@dataclass
class Services:
    azurite: Azurite
    sandbox: SandboxProcess
    state_dir: Path

    def stop(self) -> None:
        self.sandbox.stop()
        self.azurite.stop()


def start_services(state_dir: Path) -> Services:
    azurite = start_azurite()
    try:
        sandbox = start_sandbox_process(state_dir)
    except BaseException:
        azurite.stop()
        raise
    return Services(azurite, sandbox, state_dir)
