"""The WNS send endpoint: deliveries, response headers and every rejection the reference lists."""

from __future__ import annotations

import hashlib
import re
import ssl
from typing import Any

import aiohttp
import httpx
import pytest
import yarl
from conftest import TOAST, Sender, fetch_token

from sandbox import SandboxClient, SandboxHandle

CV_PATTERN = re.compile(r"^[A-Za-z0-9+/]{21}[AQgw]\.0$")


def test_channel_uri_looks_like_a_wns_channel(channel: dict[str, Any], sandbox: SandboxHandle) -> None:
    uri = channel["channelUri"]
    assert uri.startswith(f"{sandbox.url}/?token=AwYAAA")
    token = uri.split("?token=", 1)[1]
    for escape in ("%2b", "%2f", "%3d"):
        assert escape in token
    assert channel["expiresAt"].endswith("Z")


def test_toast_arrives_in_inbox_with_headers(
    sender: Sender, channel: dict[str, Any], control: SandboxClient, wns_token: str
) -> None:
    response = sender.post(channel["channelUri"], **{"X-WNS-TTL": "600", "X-WNS-Tag": "news1", "X-WNS-PRIORITY": "1"})
    assert response.status_code == 200

    [delivery] = control.inbox(channel["channelId"])
    assert delivery["type"] == "wns/toast"
    assert delivery["contentType"] == "text/xml"
    assert delivery["payload"] == TOAST.decode()
    assert delivery["size"] == len(TOAST)
    assert delivery["headers"]["X-WNS-TTL"] == "600"
    assert delivery["headers"]["X-WNS-Tag"] == "news1"
    assert delivery["headers"]["Content-Length"] == str(len(TOAST))
    assert not any(name.lower() == "authorization" for name in delivery["headers"])
    assert delivery["authorization"] == {
        "present": True,
        "tokenSha256Prefix": hashlib.sha256(wns_token.encode()).hexdigest()[:12],
    }
    assert wns_token not in str(delivery)
    assert delivery["msgId"] == response.headers["X-WNS-Msg-ID"]
    assert delivery["receivedAt"].endswith("Z")

    control.clear_inbox(channel["channelId"])
    assert control.inbox(channel["channelId"]) == []


def test_raw_payload_is_kept_as_bytes(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    payload = b"\x00\xffbinary\x01"
    assert sender.post(channel["channelUri"], payload, "wns/raw").status_code == 200
    [delivery] = control.inbox(channel["channelId"])
    assert delivery["type"] == "wns/raw"
    assert delivery["payloadBase64"] == "AP9iaW5hcnkB"


def test_success_headers(sender: Sender, channel: dict[str, Any]) -> None:
    response = sender.post(channel["channelUri"])
    assert response.headers["X-WNS-Status"] == "received"
    assert response.headers["X-WNS-NotificationStatus"] == "received"
    assert re.fullmatch(r"[0-9A-F]{16}", response.headers["X-WNS-Msg-ID"])
    assert response.headers["X-WNS-Debug-Trace"]
    assert CV_PATTERN.match(response.headers["MS-CV"])
    assert "X-WNS-DeviceConnectionStatus" not in response.headers
    assert "X-WNS-Error-Description" not in response.headers
    assert response.content == b""


def test_request_for_status_and_ms_cv_echo(sender: Sender, channel: dict[str, Any]) -> None:
    cv = "ZRlhHTYcSkuKDDvB6PdNDg.1.2"
    response = sender.post(channel["channelUri"], **{"X-WNS-RequestForStatus": "true", "MS-CV": cv})
    assert response.headers["X-WNS-DeviceConnectionStatus"] == "connected"
    assert response.headers["MS-CV"] == cv
    response = sender.post(channel["channelUri"], **{"X-WNS-RequestForStatus": "false"})
    assert "X-WNS-DeviceConnectionStatus" not in response.headers


def test_all_types_and_optional_headers_accepted(sender: Sender, channel: dict[str, Any]) -> None:
    uri = channel["channelUri"]
    assert sender.post(uri, b'<tile><visual version="2"/></tile>', "wns/tile", **{"X-WNS-Tag": "t1"}).status_code == 200
    assert sender.post(uri, b'<badge value="3"/>', "wns/badge", **{"X-WNS-Cache-Policy": "no-cache"}).status_code == 200
    assert sender.post(uri, b"x" * 5000, "wns/raw", **{"X-WNS-Cache-Policy": "cache"}).status_code == 200
    assert sender.post(uri, **{"Content-Type": "text/xml; charset=utf-8", "X-WNS-Group": "g1"}).status_code == 200


BAD_REQUESTS: list[tuple[str, bytes, str, dict[str, str | None]]] = [
    ("missing type", TOAST, "wns/toast", {"X-WNS-Type": None}),
    ("unknown type", TOAST, "wns/toast", {"X-WNS-Type": "wns/notification"}),
    ("type without prefix", TOAST, "wns/toast", {"X-WNS-Type": "toast"}),
    ("missing content type", TOAST, "wns/toast", {"Content-Type": None}),
    ("toast as octet-stream", TOAST, "wns/toast", {"Content-Type": "application/octet-stream"}),
    ("raw as xml", b"data", "wns/raw", {"Content-Type": "text/xml"}),
    ("cache policy", TOAST, "wns/toast", {"X-WNS-Cache-Policy": "always"}),
    ("ttl text", TOAST, "wns/toast", {"X-WNS-TTL": "soon"}),
    ("ttl negative", TOAST, "wns/toast", {"X-WNS-TTL": "-1"}),
    ("tag too long", TOAST, "wns/tile", {"X-WNS-Tag": "a" * 17}),
    ("tag not alphanumeric", TOAST, "wns/tile", {"X-WNS-Tag": "a-b"}),
    ("group too long", TOAST, "wns/toast", {"X-WNS-Group": "g" * 17}),
    ("request for status", TOAST, "wns/toast", {"X-WNS-RequestForStatus": "yes"}),
    ("priority", TOAST, "wns/toast", {"X-WNS-PRIORITY": "5"}),
    ("suppress popup", TOAST, "wns/toast", {"X-WNS-SuppressPopup": "true"}),
    ("match header", TOAST, "wns/toast", {"X-WNS-Match": "type:wns/toast;all"}),
    ("empty raw", b"", "wns/raw", {}),
    ("empty toast", b"", "wns/toast", {}),
    ("malformed xml", b"<toast><visual></toast>", "wns/toast", {}),
    ("not xml", b"this is an invalid tile", "wns/tile", {}),
    ("xml with dtd", b'<!DOCTYPE t [<!ENTITY x "y">]><toast>&x;</toast>', "wns/toast", {}),
    ("latin-1 xml", "<toast>é</toast>".encode("latin-1"), "wns/toast", {}),
]


@pytest.mark.parametrize(
    ("body", "wns_type", "headers"), [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_request(
    sender: Sender,
    channel: dict[str, Any],
    control: SandboxClient,
    body: bytes,
    wns_type: str,
    headers: dict[str, str | None],
) -> None:
    response = sender.post(channel["channelUri"], body, wns_type, **headers)
    assert response.status_code == 400
    assert response.headers["X-WNS-Error-Description"]
    assert "X-WNS-Status" not in response.headers
    assert control.inbox(channel["channelId"]) == []


def test_chunked_body_is_rejected(http: httpx.Client, sender: Sender, channel: dict[str, Any]) -> None:
    response = http.post(channel["channelUri"], content=iter([TOAST]), headers=sender.headers())
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 400
    assert "Content-Length" in response.headers["X-WNS-Error-Description"]


def test_payload_over_5000_bytes(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    response = sender.post(channel["channelUri"], b"x" * 5001, "wns/raw")
    assert response.status_code == 413
    assert "5000" in response.headers["X-WNS-Error-Description"]
    assert control.inbox(channel["channelId"]) == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_only_post_is_allowed(sender: Sender, channel: dict[str, Any], method: str) -> None:
    response = sender.post(channel["channelUri"], method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_missing_authorization(sender: Sender, channel: dict[str, Any]) -> None:
    response = sender.post(channel["channelUri"], Authorization=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_request",error_description="Invalid token"'


@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer"])
def test_invalid_authorization(sender: Sender, channel: dict[str, Any], authorization: str) -> None:
    response = sender.post(channel["channelUri"], Authorization=authorization)
    assert response.status_code == 401
    assert "Invalid token" in response.headers["WWW-Authenticate"]


def test_vault_token_is_not_a_wns_token(
    sender: Sender, channel: dict[str, Any], control: SandboxClient, sandbox: SandboxHandle
) -> None:
    vault_token = fetch_token(control, sandbox, "https://vault.azure.net/.default")
    response = sender.post(channel["channelUri"], Authorization=f"Bearer {vault_token}")
    assert response.status_code == 401


def test_expired_token(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    assert control.expire_tokens() >= 1
    response = sender.post(channel["channelUri"])
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_request",error_description="Token expired"'


def test_revoked_token_and_recovery(
    sender: Sender, channel: dict[str, Any], control: SandboxClient, sandbox: SandboxHandle
) -> None:
    assert sender.post(channel["channelUri"]).status_code == 200
    assert control.revoke_tokens() >= 1
    response = sender.post(channel["channelUri"])
    assert response.status_code == 401
    assert "Invalid token" in response.headers["WWW-Authenticate"]
    sender.token = fetch_token(control, sandbox)
    assert sender.post(channel["channelUri"]).status_code == 200


def test_unknown_channel(sender: Sender, sandbox: SandboxHandle) -> None:
    response = sender.post(f"{sandbox.url}/?token=invalidToken")
    assert response.status_code == 404
    assert response.headers["X-WNS-Error-Description"]


def test_reencoded_channel_uri_is_unknown(sender: Sender, channel: dict[str, Any]) -> None:
    uri = channel["channelUri"]
    upper = re.sub(r"%[0-9a-f]{2}", lambda m: m.group(0).upper(), uri)
    assert upper != uri
    assert sender.post(upper).status_code == 404
    decoded = uri.replace("%2f", "/").replace("%2b", "+")
    assert sender.post(decoded).status_code == 404
    assert sender.post(uri).status_code == 200


async def test_aiohttp_requotes_channel_uris_unless_told_not_to(
    channel: dict[str, Any], wns_token: str, ssl_context: ssl.SSLContext
) -> None:
    headers = {"Authorization": f"Bearer {wns_token}", "X-WNS-Type": "wns/toast", "Content-Type": "text/xml"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context)) as session:
        async with session.post(channel["channelUri"], data=TOAST, headers=headers) as response:
            assert response.status == 404
        exact = yarl.URL(channel["channelUri"], encoded=True)
        async with session.post(exact, data=TOAST, headers=headers) as response:
            assert response.status == 200


def test_expired_channel(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    assert sender.post(channel["channelUri"]).status_code == 200
    info = control.expire_channel(channel["channelId"])
    assert info["expired"] is True
    response = sender.post(channel["channelUri"])
    assert response.status_code == 410
    assert response.headers["X-WNS-Error-Description"]


def test_channel_with_short_lifetime_expires(sender: Sender, control: SandboxClient) -> None:
    channel = control.create_channel(expires_in=0)
    assert sender.post(channel["channelUri"]).status_code == 410


def test_deleted_channel(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    control.delete_channel(channel["channelId"])
    assert sender.post(channel["channelUri"]).status_code == 404
    with pytest.raises(httpx.HTTPStatusError):
        control.inbox(channel["channelId"])


def test_channel_of_another_app(sender: Sender, control: SandboxClient) -> None:
    channel = control.create_channel(client_id="another-app")
    response = sender.post(channel["channelUri"])
    assert response.status_code == 403
    assert response.headers["X-WNS-Error-Description"] == "Channel URL incompatible with caller app"


def test_managed_identity_token_is_not_the_app(
    sender: Sender, channel: dict[str, Any], http: httpx.Client, sandbox: SandboxHandle
) -> None:
    response = http.get(
        sandbox.identity_endpoint,
        params={"resource": "https://wns.windows.com", "api-version": "2019-08-01"},
        headers={"X-IDENTITY-HEADER": sandbox.identity_header},
    )
    sender.token = response.json()["access_token"]
    assert sender.post(channel["channelUri"]).status_code == 403


def test_stats_count_sends(sender: Sender, channel: dict[str, Any], control: SandboxClient) -> None:
    before = control.stats()["wnsSends"]
    sender.post(channel["channelUri"])
    sender.post(channel["channelUri"], Authorization=None)
    after = control.stats()["wnsSends"]
    assert after["total"] == before["total"] + 2
    assert after["byStatus"]["200"] == before["byStatus"].get("200", 0) + 1
    assert after["byStatus"]["401"] == before["byStatus"].get("401", 0) + 1
