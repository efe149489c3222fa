"""Request validation: every mistake is a 4xx that names the field."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from pushfuncs.channel_uri import parse_allowed_hosts
from pushfuncs.errors import ApiError
from pushfuncs.validation import parse_installation_request, parse_options, parse_send_request
from pushfuncs.wns import NotificationType, WnsOptions

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOSTS = parse_allowed_hosts(None)
CHANNEL = "https://db5.notify.windows.com/?token=AwYAAAB%2b"
TOAST = "<toast><visual><binding template='ToastGeneric'><text>Hi</text></binding></visual></toast>"


def send(**body: object) -> bytes:
    base: dict[str, object] = {"type": "toast", "payload": TOAST, "target": {"installationId": "dev-1"}}
    base.update(body)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def error_of(call, *args) -> ApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as caught:
        call(*args)
    return caught.value


def test_a_toast_request_parses() -> None:
    request = parse_send_request(send())
    assert request.notification_type is NotificationType.TOAST
    assert request.payload == TOAST.encode()
    assert request.target.installation_id == "dev-1"
    assert request.options == WnsOptions()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (send(type="push"), "type"),
        (send(type=None), "type"),
        (send(payload=None), "payload"),
        (send(payload="<toast>"), "payload"),
        (send(payload="<tile/>"), "payload"),  # root does not match the type
        (send(payload="x" * 5001, type="raw"), "payload"),
        (send(payload="", type="raw"), "payload"),
        (send(payload=None, payloadBase64="", type="raw"), "payloadBase64"),
        (send(payload=None, payloadBase64="***", type="raw"), "payloadBase64"),
        (send(payload=None, payloadBase64="aGk="), "payloadBase64"),  # base64 only for raw
        (send(target=None), "target"),
        (send(target={"installationId": "a/b"}), "target.installationId"),
        (send(target={"installationId": "x", "extra": 1}), "target.extra"),
        (send(surprise=True), "surprise"),
        (send(options={"X-WNS-SuppressPopup": "true"}), "options.X-WNS-SuppressPopup"),
        (send(options={"X-WNS-Tag": "seventeen-chars-x"}), "options.X-WNS-Tag"),
        (send(options={"X-WNS-Group": "a\r\nX-Evil: 1"}), "options.X-WNS-Group"),
        (send(options={"X-WNS-TTL": -1}), "options.X-WNS-TTL"),
        (send(options={"X-WNS-TTL": True}), "options.X-WNS-TTL"),
        (send(options={"X-WNS-PRIORITY": 5}), "options.X-WNS-PRIORITY"),
        (send(options={"X-WNS-PRIORITY": 0}), "options.X-WNS-PRIORITY"),
        (send(options={"X-WNS-Cache-Policy": "sometimes"}), "options.X-WNS-Cache-Policy"),
        (send(options={"X-WNS-RequestForStatus": "yes"}), "options.X-WNS-RequestForStatus"),
        (send(options={"X-WNS-Bogus": 1}), "options.X-WNS-Bogus"),
        (send(options=[1]), "options"),
    ],
)
def test_bad_send_requests_name_the_field(body: bytes, field: str) -> None:
    error = error_of(parse_send_request, body)
    assert 400 <= error.status < 500
    assert error.field == field
    assert error.to_body()["error"]["code"]  # type: ignore[index]


def test_payload_limit_is_5000_bytes_of_utf8() -> None:
    assert parse_send_request(send(type="raw", payload="é" * 2500)).payload == "é".encode() * 2500
    assert error_of(parse_send_request, send(type="raw", payload="é" * 2501)).status == 400


def test_xml_with_entities_is_refused() -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa">]><toast>&a;</toast>'
    assert error_of(parse_send_request, send(payload=bomb)).field == "payload"


def test_raw_base64_payload_is_decoded() -> None:
    raw = bytes(range(256))
    request = parse_send_request(send(type="raw", payload=None, payloadBase64=base64.b64encode(raw).decode()))
    assert request.payload == raw


def test_every_option_by_header_name_or_alias() -> None:
    options = parse_options(
        {
            "X-WNS-Cache-Policy": "No-Cache",
            "x-wns-ttl": "3600",
            "X-WNS-Tag": "score",
            "group": "sports",
            "X-WNS-RequestForStatus": True,
            "priority": 3,
        }
    )
    assert options == WnsOptions(
        cache_policy="no-cache", ttl=3600, tag="score", group="sports", request_for_status=True, priority=3
    )


def test_the_same_option_twice_is_refused() -> None:
    assert error_of(parse_options, {"X-WNS-TTL": 1, "ttl": 2}).field == "options.ttl"


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"", 400), (b"{", 400), (b"[]", 400), (b"1" * 70000, 413), (b"[" * 100000 + b"]" * 100000, 413)],
)
def test_bad_json_bodies(body: bytes, status: int) -> None:
    assert error_of(parse_send_request, body).status == status


def test_deeply_nested_json_within_the_size_limit_is_a_400() -> None:
    body = b'{"a":' + b"[" * 30000 + b"]" * 30000 + b"}"
    assert error_of(parse_send_request, body).status == 400


def install(**body: object) -> bytes:
    base: dict[str, object] = {"channelUri": CHANNEL}
    base.update(body)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def test_installation_defaults_to_30_days() -> None:
    request = parse_installation_request(install(userId="alice", tags=["b", "a", "a"]), HOSTS, NOW)
    assert request.expires_at == NOW + timedelta(days=30)
    assert request.tags == ["a", "b"]
    assert request.user_id == "alice"


def test_installation_expiry_is_kept_when_sooner() -> None:
    request = parse_installation_request(install(expiresAt="2026-12-01T00:00:00Z"), HOSTS, NOW)
    assert request.expires_at == datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (install(channelUri=None), "channelUri"),
        (install(channelUri="https://evil.example/?token=x"), "channelUri"),
        (install(expiresAt="2027-02-01T00:00:00Z"), "expiresAt"),
        (install(expiresAt="2026-11-01T00:00:00Z"), "expiresAt"),
        (install(expiresAt="tomorrow"), "expiresAt"),
        (install(expiresAt="2026-12-01T00:00:00"), "expiresAt"),
        (install(tags="a"), "tags"),
        (install(tags=["ok", "no spaces"]), "tags[1]"),
        (install(tags=[f"t{i}" for i in range(61)]), "tags"),
        (install(userId="a'b or PartitionKey ne ''"), "userId"),
        (install(platform="wns"), "platform"),
    ],
)
def test_bad_installations_name_the_field(body: bytes, field: str) -> None:
    error = error_of(parse_installation_request, body, HOSTS, NOW)
    assert error.status == 400
    assert error.field == field
