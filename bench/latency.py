"""Latency from `POST /api/notifications` to the sandbox inbox, through the local Functions host.

The app runs under `python -m devhost host` in a process of its own (real HTTP in, the host's
queue polling, the app's delivery). Single sends go out at a steady rate, each to its own
installation; the latency of each is the sandbox's `receivedAt` for it minus the time the POST
was started (one clock: the same machine). Without the local host, the POST function is called
in-process instead, and the row says so.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp

from bench.app import ROOT, app_settings
from bench.loops import TOAST
from bench.services import Services, client_ssl_context, free_port


@dataclass
class LatencyResult:
    mode: str  # "devhost" or "in-process"
    rate: float
    sent: int
    latencies_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    note: str = ""

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        data = sorted(self.latencies_ms if values is None else values)
        if not data:
            return float("nan")
        rank = max(0, min(len(data) - 1, round(p / 100 * len(data) + 0.5) - 1))
        return data[rank]


def devhost_available() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "host", "--help"], cwd=ROOT, capture_output=True, timeout=60
    )
    return result.returncode == 0


def _parse_rfc3339(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def _wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def measure_devhost(
    services: Services, channels: dict[str, str], rate: float, count: int, work_dir: Path
) -> LatencyResult:
    """Start the local host on the app, register `count` installations, send at `rate` per second."""
    settings = app_settings(services)
    # The refresh timer runs on start-up, as in Azure: the token is in Key Vault before the first send.
    settings["TOKEN_REFRESH_SCHEDULE"] = "0 0 * * * *"
    key = secrets.token_urlsafe(32)
    settings_path = work_dir / "local.settings.json"
    settings_path.write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
    keys_path = work_dir / "keys.json"
    keys_path.write_text(json.dumps({"masterKey": secrets.token_urlsafe(32), "functionKeys": {"default": key}}))
    port = free_port()
    log = open(work_dir / "devhost.log", "wb")  # noqa: SIM115 - closed below, after the process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devhost",
            "host",
            "--root",
            str(ROOT),
            "--settings",
            str(settings_path),
            "--keys",
            str(keys_path),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/api"
    headers = {"x-functions-key": key, "content-type": "application/json"}
    sandbox_url = services.sandbox.url
    try:
        await _wait_listening(port, 60.0)
        connector = aiohttp.TCPConnector(ssl=client_ssl_context(services.sandbox.ca_path), limit=50)
        async with aiohttp.ClientSession(connector=connector) as session:
            ids = [f"lat-{uuid.uuid4().hex[:12]}" for _ in range(count)]
            chosen = list(channels)[:count]
            for installation_id, channel in zip(ids, chosen, strict=True):
                async with session.put(
                    f"{base}/installations/{installation_id}", json={"channelUri": channel}, headers=headers
                ) as response:
                    if response.status not in (200, 201):
                        raise RuntimeError(f"registration through the local host failed: {response.status}")
            # Warm up: one send, delivered, before the clock starts (token, connections).
            async with session.post(
                f"{base}/notifications",
                json={"type": "toast", "payload": TOAST.decode(), "target": {"installationId": ids[0]}},
                headers=headers,
            ) as response:
                await response.read()
            await asyncio.sleep(2.0)
            channel_ids = channels
            for channel in chosen:
                async with session.delete(f"{sandbox_url}/_sandbox/channels/{channel_ids[channel]}/inbox"):
                    pass
            started_at: dict[str, float] = {}
            post_ms: list[float] = []

            async def send(i: int) -> None:
                body = {"type": "toast", "payload": TOAST.decode(), "target": {"installationId": ids[i]}}
                started_at[chosen[i]] = time.time()
                begun = time.perf_counter()
                async with session.post(f"{base}/notifications", json=body, headers=headers) as response:
                    await response.read()
                    if response.status != 202:
                        raise RuntimeError(f"POST through the local host answered {response.status}")
                post_ms.append((time.perf_counter() - begun) * 1000)

            tasks = []
            origin = time.perf_counter()
            for i in range(count):
                delay = origin + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(i)))
            await asyncio.gather(*tasks)
            latencies = await _collect(session, sandbox_url, channel_ids, started_at, timeout=60.0)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
    return LatencyResult("devhost", rate, count, latencies, post_ms)


async def _collect(
    session: aiohttp.ClientSession,
    sandbox_url: str,
    channel_ids: dict[str, str],
    started_at: dict[str, float],
    timeout: float,
) -> list[float]:
    """Wait until every channel got its notification; latency = receivedAt - POST start, in ms."""
    deadline = time.monotonic() + timeout
    latencies: dict[str, float] = {}
    while len(latencies) < len(started_at):
        for uri, began in started_at.items():
            if uri in latencies:
                continue
            async with session.get(f"{sandbox_url}/_sandbox/channels/{channel_ids[uri]}/inbox") as response:
                inbox = await response.json()
            if inbox:
                received = min(_parse_rfc3339(str(item["receivedAt"])) for item in inbox)
                latencies[uri] = (received - began) * 1000
        if len(latencies) < len(started_at):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    return list(latencies.values())


async def measure_in_process(services: Services, channels: dict[str, str], rate: float, count: int) -> LatencyResult:
    """The same measurement without an HTTP host: the POST function is called in this process and
    the delivery queue is polled by the benchmark's host-like driver (the app environment must be on)."""
    import os

    from bench.app import HostLikeDriver, call_http
    from bench.sends import register, toast_request

    ids = [f"lat-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    chosen = list(channels)[:count]
    for installation_id, channel in zip(ids, chosen, strict=True):
        await register(installation_id, channel)
    driver = HostLikeDriver(services.azurite.connection_string, os.environ["DELIVERY_QUEUE"], "deliver_notifications")
    started_at: dict[str, float] = {}
    post_ms: list[float] = []
    connector = aiohttp.TCPConnector(ssl=client_ssl_context(services.sandbox.ca_path), limit=20)
    async with aiohttp.ClientSession(connector=connector) as session:
        channel_ids = channels
        for channel in chosen:
            async with session.delete(f"{services.sandbox.url}/_sandbox/channels/{channel_ids[channel]}/inbox"):
                pass
        runner = asyncio.create_task(driver.run(count, timeout=120.0))
        origin = time.perf_counter()
        for i in range(count):
            delay = origin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            started_at[chosen[i]] = time.time()
            begun = time.perf_counter()
            await call_http("send_notification", "POST", "notifications", toast_request({"installationId": ids[i]}))
            post_ms.append((time.perf_counter() - begun) * 1000)
        await runner
        await driver.close()
        latencies = await _collect(session, services.sandbox.url, channel_ids, started_at, timeout=60.0)
    return LatencyResult("in-process", rate, count, latencies, post_ms, note="POST function called in-process")
