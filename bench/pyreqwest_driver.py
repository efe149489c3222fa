"""Candidate: pyreqwest (Rust reqwest over hyper and rustls), run by the benchmark's own environment.

The same toast, token and sandbox channels as the other loops: C concurrent workers over
keep-alive HTTP/1.1 connections, no redirects, the sandbox CA as the only added root. It runs
in bench/.env (a candidate, not a dependency of the app); its CPU includes its Rust runtime's
threads (process time counts every thread).

usage: bench/.env/bin/python bench/pyreqwest_driver.py <channels.json> <count> <concurrency> <ca.pem> <token>
prints: {"sent": n, "ok": n, "seconds": s, "cpuSeconds": s, "errors": {...}}
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from datetime import timedelta

TOAST = (
    b"<toast><visual><binding template='ToastGeneric'><text>Benchmark</text>"
    b"<text>Hello from pushfuncs</text></binding></visual></toast>"
)


async def run(channels: list[str], count: int, concurrency: int, ca_pem: bytes, token: str) -> dict[str, object]:
    from pyreqwest.client import ClientBuilder

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/xml", "X-WNS-Type": "wns/toast"}
    builder = (
        ClientBuilder()
        .add_root_certificate_pem(ca_pem)
        .follow_redirects(False)
        .http1_only()
        .no_proxy()
        .max_connections(concurrency)
        .connect_timeout(timedelta(seconds=5))
        .timeout(timedelta(seconds=20))
    )
    errors: Counter[str] = Counter()
    async with builder.build() as client:

        async def post(uri: str) -> bool:
            try:
                response = await client.post(uri).headers(headers).body_bytes(TOAST).build().send()
                await response.bytes()
                return response.status == 200
            except Exception as error:
                errors[type(error).__name__] += 1
                return False

        async def workers(total: int) -> int:
            ok = 0
            indexes = iter(range(total))

            async def worker() -> None:
                nonlocal ok
                for i in indexes:
                    if await post(channels[i % len(channels)]):
                        ok += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return ok

        await workers(concurrency)  # open the connections first, as every other loop does
        errors.clear()
        cpu_before, started = time.process_time(), time.perf_counter()
        ok = await workers(count)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    return {"sent": count, "ok": ok, "seconds": seconds, "cpuSeconds": cpu, "errors": dict(errors)}


def main(argv: list[str]) -> int:
    channels_file, count_text, concurrency_text, ca_file, token = argv
    with open(channels_file, encoding="utf-8") as handle:
        channels: list[str] = json.load(handle)
    with open(ca_file, "rb") as handle:
        ca_pem = handle.read()
    result = asyncio.run(run(channels, int(count_text), int(concurrency_text), ca_pem, token))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Seen here: the process aborting (SIGABRT) while the interpreter finalizes, after the client
    # was closed and the result printed (its runtime's threads outlive Python's state); leave
    # without finalizing, so a measurement is not lost to it. (A reason not to run it in the worker.)
    os._exit(code)
