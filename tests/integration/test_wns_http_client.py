"""The WNS HTTP client's guarantees, on the wire: what a local TLS server receives, and the sandbox.

Each test runs against both clients: libcurl's (the default) and aiohttp's (the fallback).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from pushfuncs.http_transport import (
    AiohttpWnsClient,
    CurlWnsClient,
    Timeouts,
    TransportError,
    WnsHttpClient,
)
from pushfuncs.wns import Action, post_to_channel
from sandbox import SandboxClient

CLIENTS = [pytest.param(CurlWnsClient, id="curl"), pytest.param(AiohttpWnsClient, id="aiohttp")]
TOAST = b"<toast><visual><binding template='ToastGeneric'><text>Hi</text></binding></visual></toast>"
HEADERS = {"Authorization": "Bearer secret-bearer", "Content-Type": "text/xml", "X-WNS-Type": "wns/toast"}
OK = b"HTTP/1.1 200 OK\r\nX-WNS-Status: received\r\nX-WNS-Msg-ID: 1A2B\r\nContent-Length: 0\r\n\r\n"


@dataclass
class Seen:
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int


@dataclass
class WireServer:
    """A keep-alive HTTPS server on loopback that records each request as it arrived."""

    answer: bytes = OK
    hang: bool = False
    close_when_idle: bool = False  # close each connection after its answer, without saying so
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    closed: int = 0
    port: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        number = self.connections
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = [tuple(x.strip() for x in line.split(":", 1)) for line in header_lines if line]
                length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
                body = await reader.readexactly(length)
                self.seen.append(Seen(request_line.split(" ")[1], headers, body, number))  # type: ignore[arg-type]
                if self.hang:  # never answer; return once the client closes the connection
                    while await reader.read(1024):
                        pass
                    return
                writer.write(self.answer)
                await writer.drain()
                if self.close_when_idle:
                    return
        finally:
            self.open_now -= 1
            self.closed += 1
            writer.close()

    def url(self, target: str = "/?token=AwYAAAB%2bQ%2fabc%3d") -> str:
        return f"https://127.0.0.1:{self.port}{target}"


def _sandbox_ca() -> trustme.CA:
    """The CA the tests trust through SSL_CERT_FILE (tests/conftest.py made it)."""
    ca_file = Path(os.environ["SSL_CERT_FILE"])
    return trustme.CA.from_pem(ca_file.read_bytes(), (ca_file.parent / "ca-key.pem").read_bytes())


@pytest.fixture
async def make_server() -> AsyncIterator[Any]:
    servers: list[tuple[asyncio.Server, WireServer]] = []

    async def start(ca: trustme.CA | None = None, name: str = "127.0.0.1", **options: Any) -> WireServer:
        wire = WireServer(**options)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        (ca or _sandbox_ca()).issue_cert(name).configure_cert(context)
        server = await asyncio.start_server(wire.handle, "127.0.0.1", 0, ssl=context)
        wire.port = server.sockets[0].getsockname()[1]
        servers.append((server, wire))
        return wire

    yield start
    for server, wire in servers:
        server.close()
        for writer in wire.writers:
            writer.close()


@pytest.fixture
async def closing() -> AsyncIterator[list[Any]]:
    clients: list[Any] = []
    yield clients
    for client in clients:
        await client.close()


def test_the_default_client_is_libcurls() -> None:
    assert WnsHttpClient is CurlWnsClient


def test_without_epoll_the_default_client_is_aiohttps() -> None:
    """Where libcurl's driver cannot run (no epoll: macOS, Windows), the app still imports and sends."""
    probe = (
        "import select; del select.epoll\n"
        "from pushfuncs.http_transport import AiohttpWnsClient, WnsHttpClient\n"
        "assert WnsHttpClient is AiohttpWnsClient, WnsHttpClient"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_channel_uri_reaches_the_server_byte_for_byte(make_server: Any, closing: list[Any], client_class: Any):
    wire = await make_server()
    client = client_class()
    closing.append(client)
    targets = [
        "/?token=AwYAAAB%2bQ%2fabc%3d",
        "/?token=AwYAAAB%2BQ%2Fabc%3D",
        "/?token=a%2b%2B%2f%2F%3d%3D%25%7e%7E%2e%2E%20",
        "/?token=a+b~c*d'e(f)g!h$i,j;k:l@m=n&o=p",
        "/a/../b/./c/%2e%2e/%2E/?token=x",
        "//double//slash?token=%2f%2f",
    ]
    for target in targets:
        answer = await client.post(wire.url(target), HEADERS, TOAST)
        assert answer.status == 200
    assert [seen.target for seen in wire.seen] == targets


async def test_sandbox_channels_receive_the_post(
    sandbox_client: SandboxClient, sandbox: Any, closing: list[Any]
) -> None:
    token = sandbox_client.request_token(sandbox.tenant_id, sandbox.client_id, sandbox.client_secret)
    headers = {**HEADERS, "Authorization": f"Bearer {token.json()['access_token']}"}
    client = WnsHttpClient()
    closing.append(client)
    channels = [sandbox_client.create_channel() for _ in range(3)]
    for channel in channels:
        assert "%2b" in channel["channelUri"] or "%2f" in channel["channelUri"] or "%3d" in channel["channelUri"]
        answer = await client.post(channel["channelUri"], headers, TOAST)
        assert answer.status == 200
        # Case-insensitive headers, as classify_wns_response reads them.
        assert answer.headers.get("x-wns-msg-id") == answer.headers["X-WNS-MSG-ID"]
        [delivery] = sandbox_client.inbox(channel["channelId"])
        assert delivery["payload"] == TOAST.decode()
        assert delivery["msgId"] == answer.headers["X-WNS-Msg-ID"]


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_sends_only_the_headers_given(make_server: Any, closing: list[Any], client_class: Any) -> None:
    wire = await make_server()
    client = client_class()
    closing.append(client)
    big = b"x" * 5000  # libcurl would ask `Expect: 100-continue` above 1 KiB
    answer = await client.post(wire.url(), {**HEADERS, "X-WNS-TTL": "600"}, big)
    assert answer.status == 200
    [seen] = wire.seen
    assert seen.body == big
    names = {name.lower() for name, _ in seen.headers}  # no User-Agent, Accept, Expect
    assert names == {"host", "authorization", "content-type", "x-wns-type", "x-wns-ttl", "content-length"}
    assert dict((k.lower(), v) for k, v in seen.headers)["content-length"] == "5000"


async def test_a_header_with_a_line_break_is_refused(make_server: Any, closing: list[Any]) -> None:
    wire = await make_server()
    client = CurlWnsClient()
    closing.append(client)
    with pytest.raises(ValueError):
        await client.post(wire.url(), {**HEADERS, "X-WNS-Tag": "a\r\nX-Injected: 1"}, TOAST)
    assert wire.seen == []


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_a_redirect_is_answered_not_followed(make_server: Any, closing: list[Any], client_class: Any) -> None:
    wire = await make_server(answer=b"HTTP/1.1 302 Found\r\nLocation: /elsewhere?token=1\r\nContent-Length: 0\r\n\r\n")
    client = client_class()
    closing.append(client)
    result = await post_to_channel(client, wire.url(), HEADERS, TOAST)
    assert result.status_code == 302
    assert result.action is Action.FAIL
    assert [seen.target for seen in wire.seen] == ["/?token=AwYAAAB%2bQ%2fabc%3d"]


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_plain_http_is_never_spoken(make_server: Any, closing: list[Any], client_class: Any) -> None:
    wire = await make_server()
    client = client_class()
    closing.append(client)
    with pytest.raises(TransportError) as raised:
        await client.post(f"http://127.0.0.1:{wire.port}/?token=abc", HEADERS, TOAST)
    assert raised.value.timed_out is False
    assert wire.seen == []


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_a_silent_server_is_a_timeout(make_server: Any, closing: list[Any], client_class: Any) -> None:
    wire = await make_server(hang=True)
    client = client_class(timeouts=Timeouts(connect=2.0, read=1.0))
    closing.append(client)
    result = await post_to_channel(client, wire.url(), HEADERS, TOAST)
    assert result.action is Action.RETRY
    assert "timed out" in result.reason
    assert len(wire.seen) == 1


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_a_refused_connection_is_a_connection_error(closing: list[Any], client_class: Any) -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    client = client_class()
    closing.append(client)
    with pytest.raises(TransportError) as raised:
        await client.post(f"https://127.0.0.1:{port}/?token=SECRET-TOKEN%2b", HEADERS, TOAST)
    assert raised.value.timed_out is False
    assert "SECRET-TOKEN" not in str(raised.value)


@pytest.mark.parametrize("client_class", CLIENTS)
@pytest.mark.parametrize("case", ["unknown CA", "other host name"])
async def test_an_unverifiable_certificate_is_refused(
    make_server: Any, closing: list[Any], client_class: Any, case: str
) -> None:
    wire = await make_server(ca=trustme.CA()) if case == "unknown CA" else await make_server(name="example.org")
    client = client_class()
    closing.append(client)
    with pytest.raises(TransportError) as raised:
        await client.post(wire.url(), HEADERS, TOAST)
    assert raised.value.timed_out is False
    assert wire.seen == []


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_ssl_cert_file_decides_what_is_trusted(
    make_server: Any, closing: list[Any], client_class: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = trustme.CA()
    wire = await make_server(ca=other)
    other.cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "other-ca.pem"))
    client = client_class()
    closing.append(client)
    assert (await client.post(wire.url(), HEADERS, TOAST)).status == 200


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_connections_are_reused_and_bounded(make_server: Any, closing: list[Any], client_class: Any) -> None:
    wire = await make_server()
    client = client_class(max_connections=4)
    closing.append(client)
    for _ in range(10):
        assert (await client.post(wire.url(), HEADERS, TOAST)).status == 200
    assert wire.connections == 1

    answers = await asyncio.gather(*(client.post(wire.url(), HEADERS, TOAST) for _ in range(60)))
    assert [a.status for a in answers] == [200] * 60
    assert wire.most_open <= 4
    assert wire.connections <= 4
    assert len(wire.seen) == 70


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_each_send_carries_its_own_origin_target_and_body(
    make_server: Any, closing: list[Any], client_class: Any
) -> None:
    """Sends in turn to two servers with two bodies: a reused handle never keeps the last ones."""
    first, second = await make_server(), await make_server()
    client = client_class(max_connections=1)
    closing.append(client)
    plan = [(first, b"<toast>1</toast>"), (first, b"<toast>2</toast>"), (second, b"<toast>2</toast>")]
    plan += [(second, b"<toast>3</toast>"), (first, b"<toast>3</toast>"), (first, b"<toast>1</toast>")]
    for number, (wire, body) in enumerate(plan):
        assert (await client.post(wire.url(f"/?token=t{number}"), HEADERS, body)).status == 200
    assert [(s.target, s.body) for s in first.seen] == [
        ("/?token=t0", b"<toast>1</toast>"),
        ("/?token=t1", b"<toast>2</toast>"),
        ("/?token=t4", b"<toast>3</toast>"),
        ("/?token=t5", b"<toast>1</toast>"),
    ]
    assert [(s.target, s.body) for s in second.seen] == [
        ("/?token=t2", b"<toast>2</toast>"),
        ("/?token=t3", b"<toast>3</toast>"),
    ]


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_a_pooled_connection_the_server_closed_is_replaced(
    make_server: Any, closing: list[Any], client_class: Any
) -> None:
    """Servers close idle connections; the next send opens a new one. Other sockets of the same
    loop open and close in between, so descriptor numbers are reused across owners."""
    wire = await make_server(close_when_idle=True)
    other = await make_server()
    client = client_class(max_connections=2)
    closing.append(client)
    for round_number in range(12):
        answers = await asyncio.gather(*(client.post(wire.url(), HEADERS, TOAST) for _ in range(2)))
        assert [a.status for a in answers] == [200, 200], round_number
        await asyncio.sleep(0.02)  # the server's close arrives while the connections sit idle
        _reader, writer = await asyncio.open_connection("127.0.0.1", other.port)
        writer.close()
        await writer.wait_closed()
    assert len(wire.seen) == 24
    assert wire.connections == 24  # a closed connection is never reused
    assert wire.open_now == 0


@pytest.mark.parametrize("client_class", CLIENTS)
async def test_close_fails_running_sends_and_closes_connections(
    make_server: Any, closing: list[Any], client_class: Any
) -> None:
    wire = await make_server(hang=True)
    client = client_class()
    running = [asyncio.ensure_future(client.post(wire.url(), HEADERS, TOAST)) for _ in range(3)]
    while len(wire.seen) < 3:
        await asyncio.sleep(0.01)
    await client.close()
    for task in running:
        with pytest.raises(TransportError) as raised:
            await task
        assert raised.value.timed_out is False
    for _ in range(200):
        if wire.open_now == 0:
            break
        await asyncio.sleep(0.01)
    assert wire.open_now == 0

    # A closed client opens afresh on the next send (the app closes it only at shutdown).
    wire.hang = False
    closing.append(client)
    assert (await client.post(wire.url(), HEADERS, TOAST)).status == 200
