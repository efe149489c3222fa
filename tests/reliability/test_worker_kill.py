"""A worker killed (SIGKILL) in the middle of delivery batches: a new worker finishes the work.

The worker is a subprocess running the app on LocalFunctionsHost with a 4-second message lease
(renewed while a message is processed), against the shared test Azurite and WNS sandbox. Every
channel answers its first send 2 seconds late, so when the first notifications arrive, the rest
of the batches are still in flight. After the kill, their messages reappear when the lease runs
out and a second worker delivers them. Every target must end delivered; a channel may receive a
notification twice only if the first worker's send of it had reached WNS (the documented
at-least-once window), and never three times.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite, free_port
from sandbox import SandboxClient
from tests.harness import app_environment, call_http
from tests.reliability.support import ROOT, host_root, payload_counts, register_many, toast

INSTALLATIONS = 200
LEASE_SECONDS = 4
SLOW_ANSWER = [{"delaySeconds": 2}]


class Worker:
    def __init__(self, directory: Path, settings: dict[str, str], name: str) -> None:
        self.port = free_port()
        self.log_path = directory / f"{name}.log"
        environment = {**os.environ, **settings, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.reliability.worker",
                    "--root",
                    str(directory / "root"),
                    "--port",
                    str(self.port),
                    "--keys",
                    str(directory / "keys.json"),
                    "--lease",
                    str(LEASE_SECONDS),
                ],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/api/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"worker not ready within {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@pytest.fixture
async def env(azurite: Azurite, sandbox: object) -> AsyncIterator[dict[str, str]]:
    from pushfuncs.context import close_context

    with app_environment(azurite, sandbox, DELIVERY_MAX_ATTEMPTS="8") as values:
        yield values
        await close_context()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    host_root(tmp_path / "root")
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def received(sandbox_client: SandboxClient, channel_ids: list[str]) -> dict[str, int]:
    return {cid: sandbox_client.channel(cid)["received"] for cid in channel_ids}


async def status(notification_id: str) -> dict[str, Any]:
    response = await call_http("get_notification", "GET", f"notifications/{notification_id}", id=notification_id)
    assert response.status == 200, response.body
    return dict(response.body)


async def send_to_tag(tag: str, payload: str) -> str:
    body = {"type": "toast", "payload": payload, "target": {"tag": tag}}
    accepted = await call_http("send_notification", "POST", "notifications", body)
    assert accepted.status == 202, accepted.body
    return str(accepted.body["id"])


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float, worker: Worker) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, worker.output()
        await asyncio.sleep(0.05)


async def test_a_killed_worker_loses_nothing_and_repeats_only_unrecorded_sends(
    env: dict[str, str], sandbox_client: SandboxClient, workers: list[Worker], tmp_path: Path
) -> None:
    channels = [sandbox_client.create_channel() for _ in range(INSTALLATIONS)]
    channel_ids = [c["channelId"] for c in channels]
    tag = f"kill{env['DELIVERY_QUEUE'][-10:]}"
    await register_many([(f"kill-{i:03d}", c["channelUri"], [tag]) for i, c in enumerate(channels)])
    for channel_id in channel_ids:
        sandbox_client.inject_faults(channel_id, SLOW_ANSWER * 2)
    sample = channel_ids[:: INSTALLATIONS // 20]

    first = Worker(tmp_path, env, "worker-1")
    workers.append(first)
    first.wait_ready()
    # The first notification is delivered and recorded before the kill: it must not be sent again.
    recorded, recorded_payload = await send_to_tag(tag, toast("kill recorded")), toast("kill recorded")

    async def recorded_done() -> bool:
        return (await status(recorded))["status"] == "delivered"

    await wait_until(recorded_done, 60, first)
    # The second is killed mid-batch: as soon as its first slow answers are back, the rest are in flight.
    killed, killed_payload = await send_to_tag(tag, toast("kill in flight")), toast("kill in flight")

    async def first_answers_back() -> bool:
        return sum(sandbox_client.channel(cid)["received"] for cid in sample) > len(sample)

    await wait_until(first_answers_back, 60, first)
    first.kill()
    killed_at = time.monotonic()
    # Sends already on their way to WNS still land, as they would on the real service.
    await asyncio.sleep(2.5)
    before = payload_counts(sandbox_client, channel_ids)
    sent_before_restart = sum(c[killed_payload] for c in before.values())
    recorded_before_restart = (await status(killed))["counts"]
    # Killed mid-batch: sends had reached WNS, none of their outcomes was recorded.
    assert sent_before_restart > 0 and recorded_before_restart["delivered"] < INSTALLATIONS, recorded_before_restart

    second = Worker(tmp_path, env, "worker-2")
    workers.append(second)
    second.wait_ready()

    async def all_delivered() -> bool:
        return [(await status(n))["status"] for n in (recorded, killed)] == ["delivered", "delivered"]

    await wait_until(all_delivered, 90, second)
    settled_in = time.monotonic() - killed_at
    after = payload_counts(sandbox_client, channel_ids)
    repeats_recorded = sum(c[recorded_payload] - 1 for c in after.values())
    repeats_killed = sum(c[killed_payload] - 1 for c in after.values())
    print(
        f"\nworker kill: {INSTALLATIONS} targets per notification; in-flight notification: {sent_before_restart}"
        f" received before the kill took effect, outcomes recorded then: {recorded_before_restart['delivered']};"
        f" duplicates after the restart: {repeats_killed} (window: {sent_before_restart} sent, unrecorded);"
        f" recorded notification repeated: {repeats_recorded}; settled {settled_in:.0f} s after the kill"
    )
    for notification_id in (recorded, killed):
        counts = (await status(notification_id))["counts"]
        assert (counts["delivered"], counts["failed"], counts["pending"]) == (INSTALLATIONS, 0, 0), counts
    assert all(c[recorded_payload] == 1 for c in after.values()), "a recorded delivery was sent again"
    assert all(c[killed_payload] >= 1 for c in after.values()), "a target was lost"
    # A repeat only where the killed worker's send had reached WNS, and never a third copy.
    assert all(after[cid][killed_payload] <= 1 + before[cid][killed_payload] for cid in channel_ids)
    assert repeats_killed <= sent_before_restart
