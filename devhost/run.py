"""`python -m devhost run`: the whole system on one machine, for local development.

Starts Azurite, the WNS sandbox and the local Functions host, each in its own process group,
waits until each is ready, prints what to do next, and on Ctrl-C (SIGINT) or SIGTERM stops them
in reverse order, leaving nothing running.

The host runs in a child process because aiohttp builds its TLS trust from SSL_CERT_FILE when it
is imported: the child gets SSL_CERT_FILE/REQUESTS_CA_BUNDLE (the sandbox CA) from its start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from devhost.azurite import Azurite, start_azurite
from devhost.host import DEFAULT_KEYS_PATH, DEFAULT_PORT

RUN_DESCRIPTION = """\
Run the whole system locally: Azurite (storage emulator), the WNS sandbox (a local stand-in for
WNS, Entra ID and Key Vault) and the function app on a local stand-in for the Functions host.

This is a local development tool. It is never deployed and is not how the app runs in Azure.
Those who have Azure Functions Core Tools can use `func start` (the real Functions host) instead
of the stand-in, with Azurite and `python -m sandbox` started by hand.

If the settings file does not exist it is created from local.settings.sample.json. Values that
point at the default sandbox (localhost:8443) and Azurite ports are rewritten to the ports in use.
Ctrl-C stops everything it started.
"""

SAMPLE_SETTINGS = "local.settings.sample.json"
DEFAULT_SANDBOX_PORT = 8443
DEFAULT_AZURITE_PORTS = (10000, 10001, 10002)
DEFAULT_AZURITE_DIR = ".azurite"
READY_TIMEOUT = 60.0


class RunError(Exception):
    """A start-up problem worth a one-line message rather than a traceback."""


class _Stop(Exception):
    """Raised from the SIGTERM handler so start-up and the wait loop unwind the same way as Ctrl-C."""


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=".", help="project root with host.json (default: .)")
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument(
        "--settings",
        default="local.settings.json",
        help="settings file, created from local.settings.sample.json if missing (default: %(default)s)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="Functions host HTTP port (default: %(default)s)"
    )
    parser.add_argument(
        "--sandbox-port", type=int, default=DEFAULT_SANDBOX_PORT, help="WNS sandbox HTTPS port (default: %(default)s)"
    )
    parser.add_argument(
        "--sandbox-state-dir", default=".sandbox", help="where the sandbox keeps its CA (default: %(default)s)"
    )
    parser.add_argument("--blob-port", type=int, default=DEFAULT_AZURITE_PORTS[0], help="Azurite blob port")
    parser.add_argument("--queue-port", type=int, default=DEFAULT_AZURITE_PORTS[1], help="Azurite queue port")
    parser.add_argument("--table-port", type=int, default=DEFAULT_AZURITE_PORTS[2], help="Azurite table port")
    parser.add_argument(
        "--keys", default=str(DEFAULT_KEYS_PATH), help="function keys file, created if missing (default: %(default)s)"
    )
    parser.add_argument(
        "--azurite-dir",
        default=DEFAULT_AZURITE_DIR,
        help="where Azurite keeps its data between runs (default: %(default)s)",
    )
    storage = parser.add_mutually_exclusive_group()
    storage.add_argument("--fresh", action="store_true", help="delete Azurite's kept data before starting")
    storage.add_argument(
        "--in-memory", action="store_true", help="keep Azurite's data in memory only: nothing is kept or read"
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging in the host")


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def port_in_use(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:port (or the port cannot be bound)."""
    with contextlib.closing(socket.socket()) as probe:
        probe.settimeout(0.2)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return True
    with contextlib.closing(socket.socket()) as binder:
        try:
            binder.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def check_ports(ports: dict[str, tuple[int, str]]) -> None:
    """Fail with one clear message naming every port that is taken and the option that moves it."""
    seen: dict[int, str] = {}
    problems = []
    for name, (port, option) in ports.items():
        if not 0 < port < 65536:
            problems.append(f"{name}: {port} is not a valid port ({option})")
        elif port in seen:
            problems.append(f"{name} and {seen[port]} both want port {port}")
        elif port_in_use(port):
            problems.append(f"port {port} ({name}) is already in use: stop what uses it, or pass {option} <port>")
        seen[port] = name
    if problems:
        raise RunError("cannot start:\n  " + "\n  ".join(problems))


def rewrite_value(value: str, sandbox_port: int) -> str:
    """Point a sample value at the sandbox actually started (only the default port is rewritten)."""
    if sandbox_port == DEFAULT_SANDBOX_PORT:
        return value
    return value.replace(f"localhost:{DEFAULT_SANDBOX_PORT}", f"localhost:{sandbox_port}")


def ensure_settings(path: Path, root: Path) -> None:
    if path.exists():
        return
    sample = root / SAMPLE_SETTINGS
    if not sample.exists():
        raise RunError(f"{path} does not exist and there is no {SAMPLE_SETTINGS} to copy it from")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample, path)
    say(f"{path.name} did not exist: created it from {SAMPLE_SETTINGS} (edit it to change settings).")


def host_environment(settings_path: Path, azurite: Azurite, sandbox_port: int, ca_path: Path) -> dict[str, str]:
    """The child host's environment: ours, plus the settings that must match what was started.

    The host applies the settings file only where the environment does not already set a
    value, so these win over the file.
    """
    document = json.loads(settings_path.read_text(encoding="utf-8"))
    values = document.get("Values") or {}
    overrides = {
        name: rewrite_value(value, sandbox_port)
        for name, value in values.items()
        if isinstance(value, str) and f"localhost:{DEFAULT_SANDBOX_PORT}" in value
    }
    storage = values.get("AzureWebJobsStorage", "")
    if not isinstance(storage, str) or storage in ("", "UseDevelopmentStorage=true") or "127.0.0.1:1000" in storage:
        overrides["AzureWebJobsStorage"] = azurite.connection_string
    overrides["SSL_CERT_FILE"] = overrides["REQUESTS_CA_BUNDLE"] = str(ca_path)
    return {**os.environ, **overrides, "PYTHONUNBUFFERED": "1"}


@dataclass
class Child:
    """A child process in its own process group, stopped by signalling the whole group."""

    name: str
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            say(f"stopping {self.name}")
        for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; make sure nothing else of its group is left either.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            return


def spawn(name: str, command: list[str], cwd: Path, env: dict[str, str] | None = None) -> Child:
    # A new session: Ctrl-C in the terminal reaches only this command, which stops children in order.
    process = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)
    return Child(name, process)


def wait_until(ready: Callable[[], bool], child: Child | None, what: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if child is not None and not child.alive():
            raise RunError(f"{what} exited with code {child.process.returncode} before it was ready (see its output)")
        if time.monotonic() > deadline:
            raise RunError(f"{what} was not ready within {timeout:.0f}s")
        time.sleep(0.1)


def listening(port: int) -> bool:
    with contextlib.closing(socket.socket()) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Started:
    """What `run` started, stopped in reverse order."""

    azurite: Azurite | None = None
    children: list[Child] = field(default_factory=list)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        if self.azurite is not None:
            say("stopping Azurite")
            self.azurite.stop()
        self.children, self.azurite = [], None


@contextlib.contextmanager
def _termination_as_exception() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def shown(path: Path) -> str:
    """A path as the user would type it: relative when under the current directory."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def next_steps(host_url: str, sandbox_url: str, ca_path: Path, function_key: str, keys_path: Path) -> str:
    ca = shown(ca_path)
    return f"""
Everything is running (development only):
  Functions host : {host_url}/api   (health: {host_url}/api/health)
  WNS sandbox    : {sandbox_url}   (CA: {ca})
  Function key   : {function_key}   (from {shown(keys_path)})

Try it (the full walkthrough is in docs/walkthrough.md, and scripts/walkthrough.sh runs it):
  export KEY={function_key}
  curl --cacert {ca} -X POST {sandbox_url}/_sandbox/channels
  curl -X PUT {host_url}/api/installations/my-pc -H "x-functions-key: $KEY" \\
       -H "content-type: application/json" -d '{{"channelUri": "<channelUri from above>"}}'
  curl -X POST {host_url}/api/notifications -H "x-functions-key: $KEY" -H "content-type: application/json" \\
       -d '{{"type": "raw", "payload": "hello", "target": {{"installationId": "my-pc"}}}}'
  curl --cacert {ca} {sandbox_url}/_sandbox/channels/<channelId>/inbox

Press Ctrl-C to stop everything.
"""


def azurite_location(root: Path, args: argparse.Namespace) -> Path | None:
    """Where Azurite keeps its data (emptied first with --fresh), or None with --in-memory."""
    if args.in_memory:
        return None
    location = root / args.azurite_dir
    if args.fresh and location.exists():
        say(f"--fresh: deleting Azurite's data in {shown(location)}")
        shutil.rmtree(location)
    return location


def run(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    settings_path = root / args.settings
    keys_path = root / args.keys
    state_dir = root / args.sandbox_state_dir
    ca_path = state_dir / "ca.pem"
    host_url = f"http://localhost:{args.port}"
    sandbox_url = f"https://localhost:{args.sandbox_port}"
    started = Started()
    try:
        with _termination_as_exception():
            try:
                check_ports(
                    {
                        "Functions host": (args.port, "--port"),
                        "WNS sandbox": (args.sandbox_port, "--sandbox-port"),
                        "Azurite blob": (args.blob_port, "--blob-port"),
                        "Azurite queue": (args.queue_port, "--queue-port"),
                        "Azurite table": (args.table_port, "--table-port"),
                    }
                )
                ensure_settings(settings_path, root)

                location = azurite_location(root, args)
                kept = "in memory" if location is None else f"data in {shown(location)}"
                say(f"starting Azurite on ports {args.blob_port}, {args.queue_port}, {args.table_port} ({kept})")
                try:
                    started.azurite = start_azurite(args.blob_port, args.queue_port, args.table_port, location=location)
                except RuntimeError as error:
                    raise RunError(str(error)) from None

                say(f"starting the WNS sandbox on {sandbox_url}")
                sandbox = spawn(
                    "the WNS sandbox",
                    [
                        sys.executable,
                        "-m",
                        "sandbox",
                        "--port",
                        str(args.sandbox_port),
                        "--state-dir",
                        str(state_dir),
                    ],
                    root,
                )
                started.children.append(sandbox)
                wait_until(lambda: listening(args.sandbox_port) and ca_path.exists(), sandbox, "the WNS sandbox")

                say(f"starting the local Functions host on {host_url}")
                command = [
                    sys.executable,
                    "-m",
                    "devhost",
                    "host",
                    "--app",
                    args.app,
                    "--root",
                    str(root),
                    "--settings",
                    str(settings_path),
                    "--port",
                    str(args.port),
                    "--keys",
                    str(keys_path),
                ]
                if args.verbose:
                    command.append("--verbose")
                env = host_environment(settings_path, started.azurite, args.sandbox_port, ca_path)
                host = spawn("the Functions host", command, root, env)
                started.children.append(host)
                health = f"http://127.0.0.1:{args.port}/api/health"
                wait_until(lambda: healthy(health), host, "the Functions host")

                keys = json.loads(keys_path.read_text(encoding="utf-8"))
                function_key = keys["functionKeys"].get("default") or next(iter(keys["functionKeys"].values()))
                print(next_steps(host_url, sandbox_url, ca_path, function_key, keys_path), flush=True)
                say("ready")

                while True:
                    for child in started.children:
                        if not child.alive():
                            raise RunError(f"{child.name} exited with code {child.process.returncode}")
                    if started.azurite.process.poll() is not None:
                        raise RunError(f"Azurite exited with code {started.azurite.process.returncode}")
                    time.sleep(0.5)
            except (KeyboardInterrupt, _Stop):
                say("interrupted")
                return 0
            finally:
                # A second Ctrl-C must not cut the clean-up short.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                started.stop()
                say("stopped")
    except RunError as error:
        print(f"devhost run: {error}", file=sys.stderr, flush=True)
        return 1
