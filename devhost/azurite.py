"""Start and stop the Azurite storage emulator (npm package `azurite`) for local runs and tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The well-known, public development account key that every Azurite install uses.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection_string(blob_port: int, queue_port: int, table_port: int) -> str:
    base = "http://127.0.0.1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint={base}:{blob_port}/{DEV_ACCOUNT};"
        f"QueueEndpoint={base}:{queue_port}/{DEV_ACCOUNT};"
        f"TableEndpoint={base}:{table_port}/{DEV_ACCOUNT};"
    )


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise RuntimeError("Azurite is not installed: run `make setup` (npm install) first.")


def _listening(port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Azurite:
    """A running Azurite process on three loopback ports."""

    process: subprocess.Popen[bytes]
    blob_port: int
    queue_port: int
    table_port: int
    workdir: Path
    # Where the data are kept across runs; None when they live in memory.
    location: Path | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Azurite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_azurite(
    blob_port: int | None = None,
    queue_port: int | None = None,
    table_port: int | None = None,
    timeout: float = 30.0,
    location: Path | None = None,
) -> Azurite:
    """Start Azurite on the given (or free) ports and wait until all three listen.

    With `location`, the data are kept in that folder (and found there on the next start);
    without, in memory. `--skipApiVersionCheck`: the current storage SDKs send API versions
    newer than Azurite knows.
    """
    ports = [p or free_port() for p in (blob_port, queue_port, table_port)]
    workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
    if location is None:
        persistence = ["--inMemoryPersistence"]
    else:
        location.mkdir(parents=True, exist_ok=True)
        persistence = ["--location", str(location)]
    args = [
        azurite_binary(),
        "--silent",
        *persistence,
        "--skipApiVersionCheck",
        "--disableTelemetry",
        # Outlive the storage SDK's idle connections (aiohttp keeps them 15 s), or a request
        # on a connection Azurite has just closed fails with "connection reset".
        "--blobKeepAliveTimeout",
        "60",
        "--queueKeepAliveTimeout",
        "60",
        "--tableKeepAliveTimeout",
        "60",
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(ports[0]),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(ports[1]),
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        str(ports[2]),
    ]
    log = open(workdir / "azurite.log", "wb")  # noqa: SIM115 - owned by the child process
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    azurite = Azurite(process, *ports, workdir=workdir, location=location)
    deadline = time.monotonic() + timeout
    while not all(_listening(p) for p in ports):
        if process.poll() is not None:
            output = (workdir / "azurite.log").read_text(errors="replace")
            azurite.stop()
            raise RuntimeError(f"Azurite exited with {process.returncode}: {output[-2000:]}")
        if time.monotonic() > deadline:
            azurite.stop()
            raise RuntimeError(f"Azurite did not listen on {ports} within {timeout}s")
        time.sleep(0.05)
    return azurite
