"""Third-party WNS senders as baselines, installed only into the benchmark's own environments.

- django-push-notifications 3.3.0 (with Django 5.2.19) in bench/.env, a virtual environment of
  its own; it uses the legacy Live token flow (`WNS_ACCESS_URL`). The sandbox only speaks Entra
  ID's token flow, so a small legacy-token shim (HTTPS, certificate from the sandbox CA) answers
  `/accesstoken.srf` here with a token the sandbox issued.
- npm `wns` 0.5.4 in bench/node_modules (bench/package.json; no lock file is written).
- pyreqwest 0.15.1, a candidate HTTP client, in bench/.env too (bench/pyreqwest_driver.py).

If an install fails (no network, no node), the row says "not run: <reason>" instead.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bench.loops import LoopResult
from bench.services import SandboxProcess, free_port, process_cpu_seconds
from bench.tlsboot import issue_server_cert, registry_environment

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".env"
NODE_MODULES = BENCH / "node_modules"
REQUIREMENTS = BENCH / "requirements-baselines.txt"


PYREQWEST = "pyreqwest 0.15.1 loop (Rust reqwest: hyper + rustls)"
NPM_WNS = "npm wns 0.5.4"


class NotRun(Exception):
    """A baseline that could not be installed or started; the message says why."""


def _tail(text: str | bytes, lines: int = 3) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(kept[-lines:])[:300]


def ensure_python_baseline() -> Path:
    """bench/.env with django-push-notifications; returns its interpreter."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import django, push_notifications, pyreqwest"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    env = registry_environment()
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, env=env)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
            check=True,
            capture_output=True,
            env=env,
            timeout=300,
        )
    except subprocess.CalledProcessError as error:
        raise NotRun(f"installing django-push-notifications failed: {_tail(error.stderr or error.stdout)}") from error
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NotRun(f"installing django-push-notifications failed: {error}") from error
    if subprocess.run(check, capture_output=True).returncode != 0:
        raise NotRun("django-push-notifications is not importable after install")
    return python


def ensure_node_baseline() -> str:
    """bench/node_modules/wns; returns the node executable."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise NotRun("node/npm not found")
    if (NODE_MODULES / "wns" / "package.json").exists():
        return node
    try:
        subprocess.run(
            [npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=BENCH,
            check=True,
            capture_output=True,
            env=registry_environment(),
            timeout=300,
        )
    except subprocess.CalledProcessError as error:
        raise NotRun(f"npm install wns failed: {_tail(error.stderr or error.stdout)}") from error
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NotRun(f"npm install wns failed: {error}") from error
    if not (NODE_MODULES / "wns" / "package.json").exists():
        raise NotRun("npm install did not produce node_modules/wns")
    return node


@dataclass
class LegacyTokenShim:
    """`POST /accesstoken.srf` (the Live endpoint django-push-notifications calls) over HTTPS."""

    runner: web.AppRunner
    url: str
    requests: int = 0


async def start_legacy_token_shim(sandbox: SandboxProcess, state_dir: Path) -> LegacyTokenShim:
    token = sandbox.token()  # issued by the sandbox, so its WNS endpoint accepts it
    holder: list[LegacyTokenShim] = []

    async def accesstoken(request: web.Request) -> web.Response:
        form = await request.post()
        holder[0].requests += 1
        if form.get("grant_type") != "client_credentials" or not form.get("client_id"):
            return web.json_response({"error": "invalid_request"}, status=400)
        return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": 86400})

    app = web.Application()
    app.router.add_post("/accesstoken.srf", accesstoken)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    cert, key = issue_server_cert(state_dir, "localhost", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    shim = LegacyTokenShim(runner, f"https://localhost:{port}/accesstoken.srf")
    holder.append(shim)
    return shim


async def _run_json(args: list[str], timeout: float) -> dict[str, object]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=BENCH.parent
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError as error:
        process.kill()
        await process.wait()
        raise NotRun(f"timed out after {timeout:.0f}s") from error
    if process.returncode != 0:
        raise NotRun(f"exited with {process.returncode}: {_tail(stderr)}")
    return json.loads(stdout.decode().strip().splitlines()[-1])


def _result(name: str, data: dict[str, object], server_cpu: float, note: str) -> LoopResult:
    errors = data.get("errors") or {}
    if errors:
        note = f"{note}; errors {errors}"
    return LoopResult(
        name=name,
        sent=int(data["sent"]),  # type: ignore[call-overload]
        ok=int(data["ok"]),  # type: ignore[call-overload]
        seconds=float(data["seconds"]),  # type: ignore[arg-type]
        client_cpu=float(data["cpuSeconds"]),  # type: ignore[arg-type]
        server_cpu=server_cpu,
        note=note,
    )


async def run_django_push_notifications(
    sandbox: SandboxProcess, channels_file: Path, count: int, state_dir: Path
) -> LoopResult:
    python = await asyncio.to_thread(ensure_python_baseline)
    shim = await start_legacy_token_shim(sandbox, state_dir)
    try:
        before = process_cpu_seconds(sandbox.process.pid)
        data = await _run_json(
            [str(python), str(BENCH / "dpn_driver.py"), str(channels_file), str(count), shim.url], timeout=600
        )
        server_cpu = process_cpu_seconds(sandbox.process.pid) - before
        note = (
            f"sequential (its bulk send is a loop); 1 legacy token request per send ({shim.requests} here,"
            " answered by the benchmark's shim on loopback)"
        )
        return _result("django-push-notifications 3.3.0 (WNS sender)", data, server_cpu, note)
    finally:
        await shim.runner.cleanup()


async def run_npm_wns(sandbox: SandboxProcess, channels_file: Path, count: int, concurrency: int = 100) -> LoopResult:
    node = await asyncio.to_thread(ensure_node_baseline)
    before = process_cpu_seconds(sandbox.process.pid)
    token = sandbox.token()
    data = await _run_json(
        [
            node,
            str(BENCH / "wns_driver.js"),
            str(channels_file),
            str(count),
            str(concurrency),
            str(sandbox.port),
            str(sandbox.ca_path),
            token,
        ],
        timeout=max(120.0, count / 50),
    )
    server_cpu = process_cpu_seconds(sandbox.process.pid) - before
    return _result(
        NPM_WNS,
        data,
        server_cpu,
        f"C={concurrency}, keep-alive agent, accessToken given; https.request patched to the sandbox port",
    )


async def run_pyreqwest(sandbox: SandboxProcess, channels_file: Path, count: int, concurrency: int = 100) -> LoopResult:
    python = await asyncio.to_thread(ensure_python_baseline)
    before = process_cpu_seconds(sandbox.process.pid)
    data = await _run_json(
        [
            str(python),
            str(BENCH / "pyreqwest_driver.py"),
            str(channels_file),
            str(count),
            str(concurrency),
            str(sandbox.ca_path),
            sandbox.token(),
        ],
        timeout=max(120.0, count / 50),
    )
    server_cpu = process_cpu_seconds(sandbox.process.pid) - before
    return _result(
        PYREQWEST,
        data,
        server_cpu,
        f"C={concurrency}, HTTP/1.1 keep-alive, no redirects; its own process (bench/.env), Rust runtime threads"
        " included",
    )
