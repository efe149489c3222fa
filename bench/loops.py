"""Baseline send loops: the least a Python client can do per notification, over TLS.

Each loop POSTs the same toast, with the same token, to the same sandbox channels as the
engine, from C concurrent workers over keep-alive connections, and counts only `200` answers.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

from bench.services import client_ssl_context, encoded_url, process_cpu_seconds

TOAST = (
    b"<toast><visual><binding template='ToastGeneric'><text>Benchmark</text>"
    b"<text>Hello from pushfuncs</text></binding></visual></toast>"
)


@dataclass
class LoopResult:
    name: str
    sent: int
    ok: int
    seconds: float
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    note: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def wns_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "text/xml", "X-WNS-Type": "wns/toast"}


async def _run_workers(
    channels: list[str], count: int, concurrency: int, post: Callable[[str], Awaitable[bool]]
) -> tuple[int, float]:
    """Run `count` posts over `concurrency` workers; returns (successes, seconds)."""
    ok = 0
    indexes = iter(range(count))

    async def worker() -> None:
        nonlocal ok
        for i in indexes:
            if await post(channels[i % len(channels)]):
                ok += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, time.perf_counter() - started


def _no_mark() -> None:
    return None


async def aiohttp_loop(
    channels: list[str],
    token: str,
    ca_path: Path,
    count: int,
    concurrency: int = 100,
    steady: Callable[[], None] = _no_mark,
) -> tuple[int, float]:
    headers = wns_headers(token)
    connector = aiohttp.TCPConnector(ssl=client_ssl_context(ca_path), limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(uri: str) -> bool:
            async with session.post(encoded_url(uri), data=TOAST, headers=headers) as response:
                await response.read()
                return response.status == 200

        # Open the connections first: steady state, as for every other client here.
        await _run_workers(channels, concurrency, concurrency, post)
        steady()
        return await _run_workers(channels, count, concurrency, post)


async def httpx_loop(
    channels: list[str],
    token: str,
    ca_path: Path,
    count: int,
    concurrency: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
    steady: Callable[[], None] = _no_mark,
) -> tuple[int, float]:
    headers = wns_headers(token)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    context: ssl.SSLContext = client_ssl_context(ca_path)
    async with httpx.AsyncClient(verify=context, limits=limits, transport=transport, timeout=30.0) as client:

        async def post(uri: str) -> bool:
            response = await client.post(uri, content=TOAST, headers=headers)
            return response.status_code == 200

        await _run_workers(channels, concurrency, concurrency, post)
        steady()
        return await _run_workers(channels, count, concurrency, post)


async def measured(
    name: str,
    run: Callable[[Callable[[], None]], Awaitable[tuple[int, float]]],
    count: int,
    sandbox_pid: int,
    note: str = "",
) -> LoopResult:
    """Run one loop, with the client's and the sandbox's CPU time over its steady state: `run` calls
    the function it is given once its connections are open (as the npm and pyreqwest drivers
    start their clocks after opening theirs), so no TLS handshake is in the figures."""
    marks = [time.process_time(), process_cpu_seconds(sandbox_pid)]

    def steady() -> None:
        marks[:] = [time.process_time(), process_cpu_seconds(sandbox_pid)]

    ok, seconds = await run(steady)
    return LoopResult(
        name=name,
        sent=count,
        ok=ok,
        seconds=seconds,
        client_cpu=time.process_time() - marks[0],
        server_cpu=process_cpu_seconds(sandbox_pid) - marks[1],
        note=note,
    )


async def app_client_loop(
    channels: list[str],
    token: str,
    count: int,
    concurrency: int = 100,
    client_class: type | None = None,
    steady: Callable[[], None] = _no_mark,
) -> tuple[int, float]:
    """One of the app's own WNS HTTP clients (default: pushfuncs.http_transport.WnsHttpClient) alone."""
    from pushfuncs.http_transport import WnsHttpClient

    headers = wns_headers(token)
    client = (client_class or WnsHttpClient)(max_connections=concurrency)
    try:

        async def post(uri: str) -> bool:
            return (await client.post(uri, headers, TOAST)).status == 200

        await _run_workers(channels, concurrency, concurrency, post)
        steady()
        return await _run_workers(channels, count, concurrency, post)
    finally:
        await client.close()
