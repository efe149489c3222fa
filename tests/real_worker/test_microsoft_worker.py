"""The app in Microsoft's own Python worker (`azure-functions-runtime`), against Azurite and the sandbox.

The worker indexes `function_app.py` itself and converts every binding itself
(tests/real_worker/worker_driver.py): its function metadata must be what the local host reads,
and an HTTP request, a queue message and a timer tick must reach our functions and come back
through its conversions.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import TextBase64DecodePolicy
from azure.storage.queue.aio import QueueClient

from devhost.functions import describe_functions
from devhost.route_rules import check_http_routes
from sandbox import SandboxClient
from tests.harness import FUNCTIONS

# azure-functions-runtime exists for 3.13+ only; CI runs 3.13 (scripts/setup.sh picks it).
pytestmark = pytest.mark.skipif(sys.version_info < (3, 13), reason="Microsoft's worker package needs Python 3.13+")

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "worker_driver.py"
TOAST = "<toast><visual><binding template='ToastGeneric'><text>through the worker</text></binding></visual></toast>"


class MicrosoftWorker:
    """worker_driver.py in a process of its own: the metadata it reported, and invocations."""

    def __init__(self, settings: dict[str, str]) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [sys.executable, str(DRIVER), str(REPO)],
            cwd=REPO,
            env={**os.environ, **settings},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.metadata: list[dict[str, Any]] = self._read()["metadata"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            pytest.fail(f"the worker exited with {self.process.wait()}:\n{self._stderr.read()[-4000:]}")
        return json.loads(line)

    def invoke(
        self, function: str, input_data: list[dict[str, Any]], trigger_metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The InvocationResponse, in protobuf's JSON form."""
        assert self.process.stdin is not None
        call = {"function": function, "inputData": input_data, "triggerMetadata": trigger_metadata or {}}
        self.process.stdin.write(json.dumps(call) + "\n")
        self.process.stdin.flush()
        return self._read()

    def http(self, function: str, method: str, path: str, body: object = None, **params: str) -> tuple[int, Any]:
        """An HTTP request as the host passes it (body bytes, route params); (status, parsed JSON body)."""
        raw = b"" if body is None else json.dumps(body).encode()
        request = {
            "method": method,
            "url": f"https://example.azurewebsites.net/api/{path}",
            "headers": {"content-type": "application/json", "x-functions-key": "checked-by-the-host"},
            "body": {"bytes": base64.b64encode(raw).decode()},
            "params": params,
            "query": {},
        }
        response = self.invoke(function, [{"name": "req", "data": {"http": request}}])
        assert response["result"]["status"] == "Success", response["result"]
        http = response["returnValue"]["http"]
        payload = base64.b64decode(http.get("body", {}).get("bytes", ""))
        return int(http["statusCode"]), json.loads(payload) if payload else None

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


@pytest.fixture
def worker(app_env: dict[str, str]) -> Iterator[MicrosoftWorker]:
    running = MicrosoftWorker(app_env)
    try:
        yield running
    finally:
        running.close()


def _queue_trigger_metadata(message_id: str, dequeue_count: int) -> dict[str, Any]:
    now = datetime.now(UTC)

    def moment(value: datetime) -> dict[str, str]:
        return {"json": json.dumps(value.isoformat())}

    return {
        "Id": {"string": message_id},
        "DequeueCount": {"json": str(dequeue_count)},
        "InsertionTime": moment(now),
        "ExpirationTime": moment(now + timedelta(days=7)),
        "NextVisibleTime": moment(now + timedelta(seconds=10)),
        "PopReceipt": {"string": "receipt"},
    }


async def _feed_queue(worker: MicrosoftWorker, connection: str, queue: str, function: str) -> int:
    """Hand every message of a queue to the function through the worker, as the host would."""
    handled = 0
    async with QueueClient.from_connection_string(
        connection, queue, message_decode_policy=TextBase64DecodePolicy()
    ) as client:
        async for message in client.receive_messages(max_messages=32, visibility_timeout=30):
            response = worker.invoke(
                function,
                [{"name": "msg", "data": {"string": message.content}}],
                _queue_trigger_metadata(message.id, message.dequeue_count or 1),
            )
            assert response["result"]["status"] == "Success", response["result"]
            await client.delete_message(message)
            handled += 1
    return handled


def test_the_worker_indexes_what_the_local_host_reads(worker: MicrosoftWorker, app_env: dict[str, str]) -> None:
    indexed = {m["name"]: m for m in worker.metadata}
    assert set(indexed) == set(FUNCTIONS)
    sample = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    specs, errors = describe_functions(list(FUNCTIONS.values()), {**sample, **app_env})
    assert errors == {}
    for spec in specs:
        metadata = indexed[spec.name]
        raw = [json.loads(b) for b in metadata["rawBindings"]]
        assert raw == json.loads(FUNCTIONS[spec.name].get_function_json())["bindings"], spec.name
        assert metadata["bindings"][spec.trigger_arg]["type"] == spec.trigger_type
        assert metadata["entryPoint"] == spec.name and metadata["scriptFile"] == "function_app.py"
        outputs = {n: b for n, b in metadata["bindings"].items() if b.get("direction") == "out"}
        expected = {t.binding_name: "queue" for t in spec.queue_outputs}
        if spec.http_output:
            expected[spec.http_output] = "http"
        assert {n: b["type"] for n, b in outputs.items()} == expected, spec.name
    http_triggers = [
        (m["name"], binding)
        for m in worker.metadata
        for binding in map(json.loads, m["rawBindings"])
        if binding["type"] == "httpTrigger"
    ]
    assert check_http_routes(http_triggers) == {}


async def test_http_queue_and_timer_invocations_through_the_worker(
    worker: MicrosoftWorker, app_env: dict[str, str], sandbox_client: SandboxClient
) -> None:
    channel = sandbox_client.create_channel()
    body = {"channelUri": channel["channelUri"], "tags": ["worker"]}
    status, installation = worker.http("put_installation", "PUT", "installations/w-pc", body, installationId="w-pc")
    assert (status, installation["installationId"], installation["tags"]) == (201, "w-pc", ["worker"])
    status, read = worker.http("get_installation", "GET", "installations/w-pc", installationId="w-pc")
    assert (status, read["channelUri"]) == (200, channel["channelUri"])
    status, error = worker.http("put_installation", "PUT", "installations/w-pc", {}, installationId="w-pc")
    assert status == 400 and error["error"]["field"] == "channelUri"

    send = {"type": "toast", "payload": TOAST, "target": {"tag": "worker"}}
    status, accepted = worker.http("send_notification", "POST", "notifications", send)
    assert status == 202, accepted
    connection = app_env["AzureWebJobsStorage"]
    assert await _feed_queue(worker, connection, app_env["FANOUT_QUEUE"], "expand_notification_targets") >= 1
    assert await _feed_queue(worker, connection, app_env["DELIVERY_QUEUE"], "deliver_notifications") >= 1
    assert [d["payload"] for d in sandbox_client.inbox(channel["channelId"])] == [TOAST]
    status, summary = worker.http("get_notification", "GET", f"notifications/{accepted['id']}", id=accepted["id"])
    assert (status, summary["status"]) == (200, "delivered"), summary

    tick = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": None, "IsPastDue": False}
    response = worker.invoke("recover_unsent_notifications", [{"name": "timer", "data": {"json": json.dumps(tick)}}])
    assert response["result"]["status"] == "Success", response["result"]
