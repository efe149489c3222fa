"""Register -> send -> deliver, end to end through the app's functions, Azurite and the WNS sandbox."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from pushfuncs.context import get_context
from pushfuncs.metrics import metrics
from pushfuncs.storage.notifications import NotificationStore
from sandbox import SandboxClient
from tests.harness import QueueDriver, call_http, finish_background_sends, refuse_outcome_writes

TOAST = (
    '<toast launch="action=open"><visual><binding template="ToastGeneric">'
    "<text>Hello from pushfuncs</text></binding></visual></toast>"
)


async def register(installation_id: str, channel_uri: str, **extra: Any) -> Any:
    return await call_http(
        "put_installation",
        "PUT",
        f"installations/{installation_id}",
        {"channelUri": channel_uri, **extra},
        installationId=installation_id,
    )


async def send(body: dict[str, Any]) -> Any:
    return await call_http("send_notification", "POST", "notifications", body)


async def status(notification_id: str) -> Any:
    response = await call_http("get_notification", "GET", f"notifications/{notification_id}", id=notification_id)
    assert response.status == 200
    return response.body


def driver(app_env: dict[str, str]) -> QueueDriver:
    return QueueDriver(app_env["AzureWebJobsStorage"], app_env["DELIVERY_QUEUE"], "deliver_notifications")


@pytest.fixture
async def device(app_env: dict[str, str], sandbox_client: SandboxClient) -> dict[str, Any]:
    channel = sandbox_client.create_channel()
    installation_id = f"dev-{channel['channelId'][:12]}"
    response = await register(installation_id, channel["channelUri"], userId="alice", tags=["sports"])
    assert response.status == 201, response.body
    return {"id": installation_id, **channel}


async def test_toast_reaches_the_inbox_with_every_header(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    options = {
        "X-WNS-Cache-Policy": "cache",
        "X-WNS-TTL": 600,
        "X-WNS-Tag": "news1",
        "X-WNS-Group": "news",
        "X-WNS-RequestForStatus": True,
        "X-WNS-PRIORITY": 1,
    }
    accepted = await send(
        {"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}, "options": options}
    )
    assert accepted.status == 202, accepted.body
    notification_id = accepted.body["id"]
    assert accepted.headers["Location"] == f"/api/notifications/{notification_id}"
    assert (await status(notification_id))["status"] == "accepted"

    queue = driver(app_env)
    await queue.drain()
    await queue.close()

    inbox = sandbox_client.inbox(device["channelId"])
    assert len(inbox) == 1
    received = inbox[0]
    headers = {k.lower(): v for k, v in received["headers"].items()}
    assert received["payload"] == TOAST
    assert headers["x-wns-type"] == "wns/toast"
    assert headers["content-type"] == "text/xml"
    assert headers["x-wns-cache-policy"] == "cache"
    assert headers["x-wns-ttl"] == "600"
    assert headers["x-wns-tag"] == "news1"
    assert headers["x-wns-group"] == "news"
    assert headers["x-wns-requestforstatus"] == "true"
    assert headers["x-wns-priority"] == "1"
    assert headers["ms-cv"].endswith(".0")

    result = await status(notification_id)
    assert result["status"] == "delivered"
    assert result["counts"]["delivered"] == 1 and result["counts"]["pending"] == 0
    target = result["targets"][0]
    assert target["installationId"] == device["id"]
    assert target["wns"]["statusCode"] == 200
    assert target["wns"]["status"] == "received"
    assert target["wns"]["msgId"]
    assert target["wns"]["deviceConnectionStatus"] == "connected"


async def test_raw_base64_payload_arrives_byte_for_byte(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    raw = bytes(range(1, 200))
    accepted = await send(
        {"type": "raw", "payloadBase64": base64.b64encode(raw).decode(), "target": {"installationId": device["id"]}}
    )
    assert accepted.status == 202
    queue = driver(app_env)
    await queue.drain()
    await queue.close()
    (received,) = sandbox_client.inbox(device["channelId"])
    assert base64.b64decode(received["payloadBase64"]) == raw
    assert {k.lower(): v for k, v in received["headers"].items()}["content-type"] == "application/octet-stream"


async def test_installation_lifecycle(app_env: dict[str, str], sandbox_client: SandboxClient) -> None:
    channel = sandbox_client.create_channel()
    created = await register("life-1", channel["channelUri"], expiresAt="2099-01-01T00:00:00Z")
    assert created.status == 400 and created.body["error"]["field"] == "expiresAt"
    created = await register("life-1", channel["channelUri"], tags=["a"])
    assert created.status == 201
    assert created.body["channelUri"] == channel["channelUri"]
    assert created.body["expiresAt"] and created.body["updatedAt"]
    again = await register("life-1", channel["channelUri"], tags=["b"])
    assert again.status == 200
    assert again.body["tags"] == ["b"]
    assert again.body["createdAt"] == created.body["createdAt"]
    fetched = await call_http("get_installation", "GET", "installations/life-1", installationId="life-1")
    assert fetched.status == 200 and fetched.body["tags"] == ["b"]
    for _ in range(2):
        deleted = await call_http("delete_installation", "DELETE", "installations/life-1", installationId="life-1")
        assert deleted.status == 204
    missing = await call_http("get_installation", "GET", "installations/life-1", installationId="life-1")
    assert missing.status == 404 and missing.body["error"]["code"] == "InstallationNotFound"


@pytest.mark.parametrize("how", ["expire", "delete"])
async def test_gone_channel_removes_the_installation(
    how: str, app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    if how == "expire":
        sandbox_client.expire_channel(device["channelId"])
    else:
        sandbox_client.delete_channel(device["channelId"])
    accepted = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    queue = driver(app_env)
    await queue.drain()
    await queue.close()
    result = await status(accepted.body["id"])
    assert result["status"] == "failed"
    target = result["targets"][0]
    assert target["wns"]["statusCode"] == (410 if how == "expire" else 404)
    assert target["channelRemoved"] is True
    assert result["counts"]["channelsRemoved"] == 1
    gone = await call_http("get_installation", "GET", f"installations/{device['id']}", installationId=device["id"])
    assert gone.status == 404


async def test_a_re_registered_channel_is_not_removed_by_a_stale_410(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    sandbox_client.expire_channel(device["channelId"])
    accepted = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    fresh = sandbox_client.create_channel()
    assert (await register(device["id"], fresh["channelUri"])).status == 200
    queue = driver(app_env)
    await queue.drain()
    await queue.close()
    result = await status(accepted.body["id"])
    assert result["targets"][0]["wns"]["statusCode"] == 410
    assert "channelRemoved" not in result["targets"][0]
    kept = await call_http("get_installation", "GET", f"installations/{device['id']}", installationId=device["id"])
    assert kept.status == 200 and kept.body["channelUri"] == fresh["channelUri"]


async def test_401_leads_to_one_refresh_and_a_delivery(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    queue = driver(app_env)
    first = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    await queue.drain()
    assert (await status(first.body["id"]))["status"] == "delivered"
    before = metrics.get("token.entra.requests")
    sandbox_client.revoke_tokens()
    second = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    await queue.drain()
    await queue.close()
    assert (await status(second.body["id"]))["status"] == "delivered"
    assert metrics.get("token.entra.requests") == before + 1
    assert len(sandbox_client.inbox(device["channelId"])) == 2


async def test_503_then_200_is_delivered_once_after_a_backoff(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    sandbox_client.inject_faults(device["channelId"], [{"status": 503, "retryAfter": 1}])
    accepted = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    queue = driver(app_env)
    await queue.run_once()
    mid = await status(accepted.body["id"])
    assert mid["targets"][0]["status"] == "retrying"
    assert mid["targets"][0]["wns"]["statusCode"] == 503
    assert await queue.run_once() == 0  # the retry waits out its delay on the queue, not in a sleep
    await queue.drain()
    await queue.close()
    result = await status(accepted.body["id"])
    assert result["status"] == "delivered"
    assert result["targets"][0]["attempts"] == 2
    assert len(sandbox_client.inbox(device["channelId"])) == 1


@pytest.mark.parametrize(("status_code", "retry"), [(500, None), (406, 1), (429, 1)])
async def test_persistent_errors_fail_after_the_last_attempt(
    status_code: int, retry: int | None, app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    rule: dict[str, Any] = {"status": status_code, "count": 10}
    if retry:
        rule["retryAfter"] = retry
    sandbox_client.inject_faults(device["channelId"], [rule])
    accepted = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    queue = driver(app_env)
    await queue.drain(timeout=60)
    await queue.close()
    result = await status(accepted.body["id"])
    assert result["status"] == "failed"
    target = result["targets"][0]
    assert target["attempts"] == 4
    assert target["reason"].startswith("gave up after 4 attempts")
    assert target["wns"]["statusCode"] == status_code
    assert sandbox_client.inbox(device["channelId"]) == []


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (
            {"status": 200, "wnsStatus": "dropped", "errorDescription": "Device is offline"},
            "dropped: Device is offline",
        ),
        ({"status": 403, "errorDescription": "Channel URL incompatible"}, "forbidden"),
        ({"status": 400, "errorDescription": "Bad header"}, "bad request"),
    ],
)
async def test_final_answers_fail_with_the_reason(
    rule: dict[str, Any], reason: str, app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    sandbox_client.inject_faults(device["channelId"], [rule])
    accepted = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    queue = driver(app_env)
    await queue.drain()
    await queue.close()
    target = (await status(accepted.body["id"]))["targets"][0]
    assert target["status"] == "failed"
    assert target["reason"].startswith(reason)
    assert target["attempts"] == 1
    assert target["wns"]["errorDescription"] == rule["errorDescription"]


@pytest.mark.parametrize(
    ("body", "status_code", "field"),
    [
        ({"type": "raw", "payload": "x" * 5001}, 400, "payload"),
        ({"type": "toast", "payload": "<toast><visual></toast>"}, 400, "payload"),
        (
            {"type": "toast", "payload": TOAST, "options": {"X-WNS-SuppressPopup": True}},
            400,
            "options.X-WNS-SuppressPopup",
        ),
        ({"type": "raw", "payload": ""}, 400, "payload"),
    ],
)
async def test_bad_sends_are_refused_before_anything_is_queued(
    body: dict[str, Any], status_code: int, field: str, app_env: dict[str, str], device: dict[str, Any]
) -> None:
    response = await send({**body, "target": {"installationId": device["id"]}})
    assert response.status == status_code
    assert response.body["error"]["field"] == field
    assert response.body["error"]["message"]
    queue = driver(app_env)
    assert await queue.pending() == 0
    await queue.close()


async def test_sending_to_an_unknown_installation_is_a_404(app_env: dict[str, str]) -> None:
    response = await send({"type": "toast", "payload": TOAST, "target": {"installationId": "nobody"}})
    assert response.status == 404
    assert response.body["error"]["code"] == "InstallationNotFound"


HOSTILE = [
    "http://{host}/?token=abc",
    "https://evil.example/?x={host}&token=abc",
    "https://{host}@evil.example/?token=abc",
    "https://user@{host}/?token=abc",
    "https://127.0.0.1:{port}/?token=abc",
    "https://2130706433:{port}/?token=abc",
    "https://0177.0.0.1:{port}/?token=abc",
    "https://[::1]:{port}/?token=abc",
    "https://localhost:1/?token=abc",
    "https://localhost/?token=abc",
    "https://localhost.:{port}/?token=abc",
    "https://localhost.evil.example:{port}/?token=abc",
    "https://{host}\\@evil.example/?token=abc",
    "https://l\u03bfcalhost:{port}/?token=abc",  # Greek omicron look-alike
    "https://{host}/?token=abc#x",
    "https://{host}/",
    "https://{host}/?token=",
    "ftp://{host}/?token=abc",
    "https://{host}/?token=a%0d%0aX-Evil:%201 b",
]


async def test_hostile_channel_uris_are_all_refused(app_env: dict[str, str], sandbox: Any) -> None:
    for template in HOSTILE:
        uri = template.format(host=f"localhost:{sandbox.port}", port=sandbox.port)
        response = await register("victim", uri)
        assert response.status == 400, uri
        assert response.body["error"]["field"] == "channelUri"
    missing = await call_http("get_installation", "GET", "installations/victim", installationId="victim")
    assert missing.status == 404


async def test_malformed_messages_go_to_poison_without_crashing(app_env: dict[str, str]) -> None:
    await get_context()  # the app creates its queues on first use
    queue = driver(app_env)
    await queue.queue.send_message("this is not json")
    await queue.queue.send_message(json.dumps({"v": 99, "id": "x"}))
    await queue.drain()
    assert queue.failures == 0
    assert sorted(await queue.poison_messages()) == sorted(["this is not json", json.dumps({"v": 99, "id": "x"})])
    await queue.close()


async def test_a_message_that_always_fails_ends_in_poison_and_failed(
    app_env: dict[str, str], device: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    notification_id = accepted.body["id"]
    queue = driver(app_env)
    # Storage refuses every outcome write: each attempt raises.
    monkeypatch.setattr(NotificationStore, "record_outcomes", refuse_outcome_writes)
    await queue.queue.clear_messages()
    bad = {
        "v": 1,
        "id": notification_id,
        "type": "toast",
        "payload": base64.b64encode(TOAST.encode()).decode(),
        "options": {},
        "targets": [{"i": device["id"], "c": device["channelUri"]}],
        "attempt": 1,
    }
    await queue.queue.send_message(json.dumps(bad))
    await queue.drain(timeout=60)
    assert queue.failures == 5
    assert len(await queue.poison_messages()) == 1
    result = await status(notification_id)
    assert result["status"] == "failed"
    assert "poison" in result["reason"]
    await queue.close()


async def test_domain_blocked_stops_all_sending_until_resumed(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    sandbox_client.inject_faults(device["channelId"], [{"status": 410, "errorDescription": "Domain Blocked"}])
    first = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    queue = driver(app_env)
    await queue.drain()
    result = await status(first.body["id"])
    assert result["status"] == "failed"
    assert result["targets"][0]["reason"] == "sending domain blocked by WNS"
    assert result["targets"][0]["wns"]["errorDescription"] == "Domain Blocked"
    refused = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    assert refused.status == 503 and refused.body["error"]["code"] == "SendingSuspended"
    kept = await call_http("get_installation", "GET", f"installations/{device['id']}", installationId=device["id"])
    assert kept.status == 200  # a blocked domain says nothing about the channel
    resumed = await call_http("resume_sending", "POST", "sending/resume")
    assert resumed.status == 200
    again = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    assert again.status == 202
    await queue.drain()
    await queue.close()
    assert (await status(again.body["id"]))["status"] == "delivered"


async def test_a_single_send_costs_three_storage_transactions_end_to_end(
    app_env: dict[str, str], device: dict[str, Any], sandbox_client: SandboxClient
) -> None:
    # The first send of a process also reads the sending switch (then cached for a minute).
    assert (await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})).status == 202
    await finish_background_sends()
    before = metrics.snapshot()
    accepted = await send({"type": "toast", "payload": TOAST, "target": {"installationId": device["id"]}})
    assert accepted.status == 202
    await finish_background_sends()
    after = metrics.snapshot()
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    storage = {k: v for k, v in delta.items() if k.startswith("storage.")}
    # Read the installation, write the summary (the outbox), merge the outcome into it; no queue.
    assert storage == {"storage.table.get": 1, "storage.table.post": 1, "storage.table.patch": 1}
    assert delta["wns.success"] == 1
    assert (await status(accepted.body["id"]))["status"] == "delivered"
    assert len(sandbox_client.inbox(device["channelId"])) == 2
    response = await call_http("get_metrics", "GET", "metrics")
    assert response.body["counters"]["storage.table.post"] >= 2
