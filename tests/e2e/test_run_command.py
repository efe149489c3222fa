"""End to end: `python -m devhost run`, the walkthrough over real HTTP, Ctrl-C, and poison handling."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import pytest
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from devhost.azurite import Azurite, free_port
from devhost.host import LocalFunctionsHost
from sandbox import SandboxClient

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "[run] ready"
TOAST = "<toast><visual><binding template='ToastGeneric'><text>poison</text></binding></visual></toast>"


def _children(pid: int) -> list[int]:
    """Every descendant of `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found.extend(kids)
        frontier.extend(kids)
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _listening(port: int) -> bool:
    with contextlib.closing(socket.socket()) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class RunCommand:
    """`python -m devhost run` in a subprocess, its output collected by a thread."""

    def __init__(self, workdir: Path, *extra_args: str) -> None:
        self.ports = {name: free_port() for name in ("port", "sandbox", "blob", "queue", "table")}
        self.workdir = workdir
        self.lines: list[str] = []
        self.ready = threading.Event()
        # The test session trusts its own CA through SSL_CERT_FILE: the run command must not inherit it.
        env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devhost",
                "run",
                "--port",
                str(self.ports["port"]),
                "--sandbox-port",
                str(self.ports["sandbox"]),
                "--blob-port",
                str(self.ports["blob"]),
                "--queue-port",
                str(self.ports["queue"]),
                "--table-port",
                str(self.ports["table"]),
                "--settings",
                str(workdir / "local.settings.json"),
                "--keys",
                str(workdir / "keys.json"),
                "--sandbox-state-dir",
                str(workdir / "sandbox"),
                "--azurite-dir",
                str(workdir / "azurite"),
                *extra_args,
            ],
            cwd=ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith(READY_LINE):
                self.ready.set()
        self.ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-80:])

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.ready.wait(timeout), f"not ready within {timeout}s:\n{self.output}"
        assert self.process.poll() is None, f"exited with {self.process.returncode}:\n{self.output}"

    @property
    def ca(self) -> Path:
        return self.workdir / "sandbox" / "ca.pem"

    @property
    def sandbox_url(self) -> str:
        return f"https://localhost:{self.ports['sandbox']}"

    @property
    def host_url(self) -> str:
        return f"http://localhost:{self.ports['port']}"

    def interrupt(self) -> None:
        """Ctrl-C, and wait for a clean exit."""
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=40) == 0, self.output

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def run_command(tmp_path: Path) -> Iterator[RunCommand]:
    running = RunCommand(tmp_path)
    try:
        yield running
    finally:
        # Only if the test failed half way: the test itself stops it with SIGINT.
        for pid in _children(running.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        running.kill()


def test_run_serves_the_walkthrough_and_ctrl_c_stops_everything(run_command: RunCommand, tmp_path: Path) -> None:
    run_command.wait_ready()
    assert (tmp_path / "local.settings.json").exists()
    assert "created it from local.settings.sample.json" in run_command.output
    assert "Function key" in run_command.output

    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    walkthrough = subprocess.run(
        ["bash", str(ROOT / "scripts" / "walkthrough.sh")],
        env={
            **env,
            "HOST_URL": f"http://localhost:{run_command.ports['port']}",
            "SANDBOX_URL": run_command.sandbox_url,
            "CA": str(run_command.ca),
            "KEYS_FILE": str(tmp_path / "keys.json"),
            "PYTHON": sys.executable,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert walkthrough.returncode == 0, walkthrough.stdout + walkthrough.stderr + run_command.output
    assert "walkthrough: OK" in walkthrough.stdout

    # The sandbox saw both notifications on the one channel the walkthrough created.
    with httpx.Client(
        base_url=run_command.sandbox_url, verify=ssl.create_default_context(cafile=str(run_command.ca))
    ) as sandbox:
        channels = sandbox.get("/_sandbox/channels").json()
        assert len(channels) == 1
        inbox = sandbox.get(f"/_sandbox/channels/{channels[0]['channelId']}/inbox").json()
    assert sorted(d["type"] for d in inbox) == ["wns/raw", "wns/toast"]

    children = _children(run_command.process.pid)
    assert len(children) >= 3, children  # Azurite, the sandbox, the host
    run_command.process.send_signal(signal.SIGINT)
    assert run_command.process.wait(timeout=40) == 0, run_command.output
    assert "[run] stopped" in run_command.output
    deadline = time.monotonic() + 5
    while any(_running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if _running(pid)] == []
    assert [port for port in run_command.ports.values() if _listening(port)] == []


def test_run_keeps_azurites_data_between_runs_unless_fresh(tmp_path: Path) -> None:
    key = ""

    def installation_status(run: RunCommand) -> int:
        with httpx.Client(base_url=run.host_url, headers={"x-functions-key": key}) as client:
            return client.get("/api/installations/kept-pc").status_code

    first = RunCommand(tmp_path)
    try:
        first.wait_ready()
        assert f"(data in {tmp_path / 'azurite'})" in first.output
        key = json.loads((tmp_path / "keys.json").read_text())["functionKeys"]["default"]
        with httpx.Client(verify=ssl.create_default_context(cafile=str(first.ca))) as sandbox:
            channel = sandbox.post(f"{first.sandbox_url}/_sandbox/channels").json()
        with httpx.Client(base_url=first.host_url, headers={"x-functions-key": key}) as client:
            put = client.put("/api/installations/kept-pc", json={"channelUri": channel["channelUri"]})
        assert put.status_code == 201, put.text
        first.interrupt()
    finally:
        first.kill()
    assert any((tmp_path / "azurite").iterdir())

    # In memory reads nothing of the kept data and leaves them; the next plain run finds them.
    for extra, expected in ((("--in-memory",), 404), ((), 200), (("--fresh",), 404)):
        again = RunCommand(tmp_path, *extra)
        try:
            again.wait_ready()
            assert installation_status(again) == expected, (extra, again.output)
            again.interrupt()
        finally:
            again.kill()


def test_run_fails_clearly_when_a_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "devhost", "run", "--port", str(port), "--settings", str(tmp_path / "s.json")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"port {port} (Functions host) is already in use" in result.stderr
    assert "--port" in result.stderr
    assert not (tmp_path / "s.json").exists()


def test_help_says_it_is_a_local_development_tool() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "run", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    text = " ".join(result.stdout.split())
    assert "local development tool" in text
    assert "never deployed" in text
    assert "`func start`" in text


def _fresh_app() -> func.FunctionApp:
    """The app's delivery and notification functions on a new FunctionApp (get_functions() is once per app)."""
    from pushfuncs import api_health, api_notifications, delivery_trigger

    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(api_notifications.bp)
    app.register_functions(api_health.bp)
    app.register_functions(delivery_trigger.bp)
    return app


async def test_a_message_that_always_fails_ends_in_poison_and_failed(
    app_env: dict[str, str],
    azurite: Azurite,
    sandbox_client: SandboxClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pushfuncs.storage.notifications import NotificationStore
    from tests.harness import call_http, refuse_outcome_writes

    # A registered device, a notification record and its queue message, made by the functions
    # themselves while no listener runs.
    channel = sandbox_client.create_channel()
    registered = await call_http(
        "put_installation",
        "PUT",
        "installations/poison-pc",
        {"channelUri": channel["channelUri"]},
        installationId="poison-pc",
    )
    assert registered.status == 201, registered.body
    accepted = await call_http(
        "send_notification",
        "POST",
        "notifications",
        {"type": "toast", "payload": TOAST, "target": {"installationId": "poison-pc"}},
    )
    assert accepted.status == 202, accepted.body
    notification_id = accepted.body["id"]
    queue_name = app_env["DELIVERY_QUEUE"]
    connection = azurite.connection_string
    async with QueueClient.from_connection_string(
        connection, queue_name, message_encode_policy=TextBase64EncodePolicy()
    ) as queue:
        with contextlib.suppress(Exception):
            await queue.create_queue()
        await queue.clear_messages()
        # Storage refuses every outcome write: each attempt raises.
        monkeypatch.setattr(NotificationStore, "record_outcomes", refuse_outcome_writes)
        bad = {
            "v": 1,
            "id": notification_id,
            "type": "toast",
            "payload": base64.b64encode(TOAST.encode()).decode(),
            "options": {},
            "targets": [{"i": "poison-pc", "c": channel["channelUri"]}],
            "attempt": 1,
        }
        await queue.send_message(json.dumps(bad))

    root = tmp_path / "root"
    root.mkdir()
    host_json = json.loads((ROOT / "host.json").read_text())
    host_json["extensions"]["queues"]["visibilityTimeout"] = "00:00:00.200"
    (root / "host.json").write_text(json.dumps(host_json))

    host = LocalFunctionsHost(_fresh_app(), root=root, settings=app_env, port=0, keys_path=tmp_path / "keys.json")
    async with host, httpx.AsyncClient(base_url=host.base_url) as client:
        assert host.keys is not None
        headers = {"x-functions-key": host.keys.default_function_key}
        deadline = time.monotonic() + 45
        summary: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = await client.get(f"/api/notifications/{notification_id}", headers=headers)
            assert response.status_code == 200, response.text
            summary = response.json()
            if summary["status"] == "failed":
                break
            await asyncio.sleep(0.3)
        assert summary["status"] == "failed", summary
        assert "poison" in json.dumps(summary)

    async with QueueClient.from_connection_string(
        connection, f"{queue_name}-poison", message_decode_policy=TextBase64DecodePolicy()
    ) as poison:
        messages = await poison.peek_messages(max_messages=32)
    assert [json.loads(m.content)["id"] for m in messages] == [notification_id]
    async with QueueClient.from_connection_string(connection, queue_name) as queue:
        assert (await queue.get_queue_properties()).approximate_message_count == 0


def test_walkthrough_script_is_executable() -> None:
    script = ROOT / "scripts" / "walkthrough.sh"
    assert os.access(script, os.X_OK)
    assert shutil.which("curl"), "the walkthrough needs curl"
