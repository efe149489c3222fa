"""Injected failures: per-channel one-shot rules and the seeded global mix."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Sender

from sandbox import SandboxClient, SandboxHandle


@pytest.fixture
def no_mix(control: SandboxClient) -> Iterator[None]:
    yield
    control.set_fault_mix()


@pytest.mark.parametrize(
    ("rule", "status", "headers"),
    [
        ({"status": 503, "retryAfter": 2}, 503, {"Retry-After": "2"}),
        ({"status": 500}, 500, {}),
        ({"status": 406, "retryAfter": 1}, 406, {"Retry-After": "1"}),
        ({"status": 429, "retryAfter": 1}, 429, {"Retry-After": "1"}),
        ({"status": 410, "errorDescription": "Domain Blocked"}, 410, {"X-WNS-Error-Description": "Domain Blocked"}),
        ({"status": 403}, 403, {}),
    ],
)
def test_error_rule(
    sender: Sender,
    channel: dict[str, Any],
    control: SandboxClient,
    rule: dict[str, Any],
    status: int,
    headers: dict[str, str],
) -> None:
    control.inject_faults(channel["channelId"], [rule])
    response = sender.post(channel["channelUri"])
    assert response.status_code == status
    for name, value in headers.items():
        assert response.headers[name] == value
    assert "X-WNS-Status" not in response.headers
    assert response.headers["X-WNS-Msg-ID"]
    assert response.headers["MS-CV"]
    assert control.inbox(channel["channelId"]) == []
    assert sender.post(channel["channelUri"]).status_code == 200
    assert len(control.inbox(channel["channelId"])) == 1


@pytest.mark.parametrize(
    ("rule", "wns_status", "description"),
    [
        (
            {
                "status": 200,
                "wnsStatus": "dropped",
                "errorDescription": "Device is offline and X-WNS-Cache-Policy is no-cache",
            },
            "dropped",
            "Device is offline and X-WNS-Cache-Policy is no-cache",
        ),
        ({"status": 200, "wnsStatus": "channelthrottled"}, "channelthrottled", None),
    ],
)
def test_status_rule(
    sender: Sender,
    channel: dict[str, Any],
    control: SandboxClient,
    rule: dict[str, Any],
    wns_status: str,
    description: str | None,
) -> None:
    control.inject_faults(channel["channelId"], [rule])
    response = sender.post(channel["channelUri"])
    assert response.status_code == 200
    assert response.headers["X-WNS-Status"] == wns_status
    assert response.headers["X-WNS-NotificationStatus"] == wns_status
    assert response.headers.get("X-WNS-Error-Description") == description
    assert control.inbox(channel["channelId"]) == []


def test_device_status_rule(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    control.inject_faults(channel["channelId"], [{"deviceStatus": "disconnected"}])
    response = sender.post(channel["channelUri"], **{"X-WNS-RequestForStatus": "true"})
    assert response.headers["X-WNS-Status"] == "received"
    assert response.headers["X-WNS-DeviceConnectionStatus"] == "disconnected"
    assert len(control.inbox(channel["channelId"])) == 1


def test_rules_apply_in_order_with_counts(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    pending = control.inject_faults(channel["channelId"], [{"status": 500, "count": 2}, {"status": 503}])
    assert pending == [{"rule": {"status": 500}, "remaining": 2}, {"rule": {"status": 503}, "remaining": 1}]
    codes = [sender.post(channel["channelUri"]).status_code for _ in range(4)]
    assert codes == [500, 500, 503, 200]
    assert control.channel(channel["channelId"])["pendingFaults"] == []


def test_invalid_requests_do_not_consume_rules(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    control.inject_faults(channel["channelId"], [{"status": 500}])
    assert sender.post(channel["channelUri"], **{"X-WNS-Type": "wns/bogus"}).status_code == 400
    assert sender.post(channel["channelUri"]).status_code == 500


def test_delayed_success_is_delivered(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    control.inject_faults(channel["channelId"], [{"delaySeconds": 0.4}])
    started = time.monotonic()
    response = sender.post(channel["channelUri"])
    assert time.monotonic() - started >= 0.4
    assert response.status_code == 200
    assert len(control.inbox(channel["channelId"])) == 1


def test_delayed_error(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    control.inject_faults(channel["channelId"], [{"status": 503, "delaySeconds": 0.2}])
    started = time.monotonic()
    assert sender.post(channel["channelUri"]).status_code == 503
    assert time.monotonic() - started >= 0.2


def test_drop_closes_the_connection(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    control.inject_faults(channel["channelId"], [{"drop": True}])
    with pytest.raises(httpx.RemoteProtocolError):
        sender.post(channel["channelUri"])
    assert control.inbox(channel["channelId"]) == []
    assert sender.post(channel["channelUri"]).status_code == 200


def test_clear_faults(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    control.inject_faults(channel["channelId"], [{"status": 500, "count": 5}])
    control.clear_faults(channel["channelId"])
    assert sender.post(channel["channelUri"]).status_code == 200


@pytest.mark.parametrize(
    "rules",
    [
        {"status": 500},
        [{"status": 99}],
        [{"status": 500, "wnsStatus": "dropped"}],
        [{"wnsStatus": "lost"}],
        [{"count": 0, "status": 500}],
        [{"delaySeconds": -1}],
        [{"drop": "yes"}],
        [{"statuss": 500}],
    ],
)
def test_invalid_rules_are_refused(control: SandboxClient, channel: dict[str, Any], rules: Any) -> None:
    with pytest.raises(httpx.HTTPStatusError) as info:
        control.inject_faults(channel["channelId"], rules)
    assert info.value.response.status_code == 400


def _statuses(sender: Sender, uri: str, count: int) -> list[int]:
    return [sender.post(uri).status_code for _ in range(count)]


@pytest.mark.usefixtures("no_mix")
def test_mix_is_seeded_and_clearable(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    mix = {"500": 0.3, "503": 0.2, "429": 0.1}
    control.set_fault_mix(mix, seed=7, retry_after=3)
    first = _statuses(sender, channel["channelUri"], 40)
    control.set_fault_mix(mix, seed=7, retry_after=3)
    assert _statuses(sender, channel["channelUri"], 40) == first
    assert {500, 503, 429, 200} <= set(first)
    assert len(control.inbox(channel["channelId"])) == 2 * first.count(200)

    control.set_fault_mix()
    assert _statuses(sender, channel["channelUri"], 5) == [200] * 5


@pytest.mark.usefixtures("no_mix")
def test_mix_retry_after_and_channel_rules_first(
    sender: Sender, channel: dict[str, Any], control: SandboxClient
) -> None:
    control.set_fault_mix({"503": 1.0}, seed=1, retry_after=4)
    control.inject_faults(channel["channelId"], [{"status": 410}])
    assert sender.post(channel["channelUri"]).status_code == 410
    response = sender.post(channel["channelUri"])
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "4"


@pytest.mark.usefixtures("no_mix")
def test_mix_timeout_and_drop(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    control.set_fault_mix({"timeout": 1.0}, seed=1, timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        sender.post(channel["channelUri"])
    assert time.monotonic() - started >= 0.3
    control.set_fault_mix({"drop": 1.0}, seed=1)
    with pytest.raises(httpx.RemoteProtocolError):
        sender.post(channel["channelUri"])
    assert control.inbox(channel["channelId"]) == []


@pytest.mark.usefixtures("no_mix")
@pytest.mark.parametrize(
    "spec",
    [{"mix": {"500": 0.7, "503": 0.7}}, {"mix": {"teapot": 0.1}}, {"mix": {"500": -1}}, {"mixture": {}}],
)
def test_invalid_mix_is_refused(http: httpx.Client, sandbox: SandboxHandle, spec: dict[str, Any]) -> None:
    response = http.post(f"{sandbox.url}/_sandbox/faults", json=spec)
    assert response.status_code == 400
