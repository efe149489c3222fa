"""The HTTP client every WNS send goes through: one pooled client per process.

`WnsHttpClient` is libcurl's multi interface (pycurl) driven from the worker's own event loop
(`curl_asyncio`): measured in bench/, it needs a fraction of aiohttp's CPU per POST (all HTTP/1.1
and TLS work is C), and CPU per send is what a delivery costs. Where pycurl cannot be imported,
it is the aiohttp client below (`AiohttpWnsClient`), which keeps the same guarantees. Either:
- sends the channel URI exactly as stored: WNS answers 404 to a re-encoded URI (libcurl is given
  the request target verbatim, as its URL parser would upper-case escapes in the path; aiohttp
  gets `encoded=True`, or yarl would turn `%2f` into `/` and `%2b` into `%2B`);
- never follows a redirect (it would carry our bearer token to another host), and speaks only
  HTTPS, to no proxy from the environment;
- has explicit connect and read timeouts (aiohttp: `read` is the longest silence; libcurl: the
  whole exchange, connect included, within connect + read: a WNS answer is a few hundred bytes);
- trusts the CAs of SSL_CERT_FILE when set (the local sandbox), else the system's, and
  verifies the certificate and the host name;
- keeps connections alive for reuse, at most `max_connections` of them; a send waits for a free
  one rather than opening more;
- on `close()`, fails the sends still running (a `TransportError`) and closes every connection.
Transport failures (no HTTP response) raise `TransportError`, whose `timed_out` says which kind.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

try:
    import pycurl

    from pushfuncs.curl_asyncio import AsyncCurlMulti, CurlTransferError
except ImportError:  # no wheel for this platform, or no epoll: the aiohttp client below serves
    pycurl = None  # type: ignore[assignment]


class TransportError(Exception):
    """No HTTP response: `timed_out` says whether it was a timeout or a connection error."""

    def __init__(self, message: str, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class HttpAnswer(NamedTuple):  # immutable, and cheaper to build than a frozen dataclass
    status: int
    headers: Mapping[str, str]  # case-insensitive


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 15.0


def _ssl_context() -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE") or None
    return ssl.create_default_context(cafile=cafile)


class ResponseHeaders(dict[str, str]):
    """Response headers by lower-cased name (the first of repeated ones); lookups ignore case."""

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        value = dict.get(self, name)  # names are mostly asked for in lower case already
        if value is None:
            value = dict.get(self, name.lower())
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


def parse_header_lines(lines: list[bytes]) -> ResponseHeaders:
    """Headers of the last response in `lines` (status and header lines, one each, as received)."""
    headers = ResponseHeaders()
    # From the end back to the final response's status line (a 1xx answer may come first), so
    # the first of a repeated header is the one kept.
    for line in reversed(lines):
        if line.startswith(b"HTTP/"):
            break
        name, colon, value = line.decode("latin-1").partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


_TOKEN_IN_TEXT = re.compile(r"token=[^\s'\"]*", re.IGNORECASE)
# libcurl adds these to a POST unless told not to: a form Content-Type when none is given,
# `Expect: 100-continue` above 1 KiB (a round trip WNS does not need), `Accept: */*`, and pycurl
# its User-Agent (the aiohttp client sends none either).
_SUPPRESSED = ("Expect:", "Accept:", "User-Agent:")


def _header_lines(headers: Mapping[str, str]) -> list[str]:
    lines = [f"{name}: {value}" for name, value in headers.items()]
    joined = "".join(lines)  # `in` scans at memchr speed; a regex over a 2 KB token does not
    if "\r" in joined or "\n" in joined or "\0" in joined:
        raise ValueError("a header name or value holds a line break")
    lines.extend(_SUPPRESSED)
    if "Content-Type" not in headers and not any(name.lower() == "content-type" for name in headers):
        lines.append("Content-Type:")
    return lines


def split_target(url: str) -> tuple[str, str]:
    """(origin, request target) of an absolute URL, the target exactly as written (no fragment)."""
    authority = url.find("//") + 2
    end = len(url)
    for mark in "/?#":
        found = url.find(mark, authority)
        if 0 <= found < end:
            end = found
    target = url[end:].partition("#")[0]
    if not target.startswith("/"):
        target = "/" + target
    return url[:end], target


class _Handle:
    """A libcurl easy handle, its bound methods, and what it last carried (options persist)."""

    __slots__ = ("body", "curl", "getinfo", "origin", "received", "setopt")

    def __init__(self, curl: pycurl.Curl) -> None:
        self.curl = curl
        self.setopt = curl.setopt  # looked up once: pycurl's attribute lookup is slow
        self.getinfo = curl.getinfo
        self.received: list[bytes] = []  # the answer's header lines, emptied before each use
        self.origin: str | None = None
        self.body: bytes | None = None


class CurlWnsClient:
    """POST bodies to channel URIs over libcurl; one per process, shared by every delivery."""

    def __init__(self, max_connections: int = 200, timeouts: Timeouts | None = None) -> None:
        if pycurl is None:
            raise RuntimeError("pycurl is not installed")
        self._max_connections = max_connections
        self._timeouts = timeouts or Timeouts()
        self._multi: AsyncCurlMulti | None = None
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Handle] = []
        self._verify: tuple[str | None, str | None] | None = None

    def _trust(self) -> tuple[str | None, str | None]:
        """(CA file, CA directory) as Python's ssl module would use them (SSL_CERT_FILE first)."""
        cafile = os.environ.get("SSL_CERT_FILE") or None
        if cafile:
            return cafile, None
        paths = ssl.get_default_verify_paths()
        return paths.cafile, paths.capath

    def _new_handle(self) -> _Handle:
        cafile, capath = self._verify or self._trust()
        curl = pycurl.Curl()
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.FOLLOWLOCATION, 0)
        curl.setopt(pycurl.MAXREDIRS, 0)
        curl.setopt(pycurl.PATH_AS_IS, 1)
        curl.setopt(pycurl.PROXY, "")
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.SSL_VERIFYPEER, 1)
        curl.setopt(pycurl.SSL_VERIFYHOST, 2)
        if cafile:
            curl.setopt(pycurl.CAINFO, cafile)
        else:
            curl.unsetopt(pycurl.CAINFO)
        if capath:
            curl.setopt(pycurl.CAPATH, capath)
        else:
            curl.unsetopt(pycurl.CAPATH)
        connect_ms = int(self._timeouts.connect * 1000)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, connect_ms)
        curl.setopt(pycurl.TIMEOUT_MS, connect_ms + int(self._timeouts.read * 1000))
        # The answer's body is not used (WNS sends none): count it as consumed, keep nothing.
        curl.setopt(pycurl.WRITEFUNCTION, len)
        handle = _Handle(curl)
        curl.setopt(pycurl.HEADERFUNCTION, handle.received.append)
        return handle

    def _get_multi(self) -> AsyncCurlMulti:
        loop = asyncio.get_running_loop()
        multi = self._multi
        if multi is None or multi.closed or multi.loop is not loop:
            if multi is not None:
                multi.close()  # made on another loop (tests run one per test): start afresh
            self._verify = self._trust()
            self._idle = []
            self._slots = asyncio.Semaphore(self._max_connections)
            multi = self._multi = AsyncCurlMulti(loop, self._max_connections)
        return multi

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> HttpAnswer:
        multi = self._get_multi()
        lines = _header_lines(headers)
        slots = self._slots
        assert slots is not None
        await slots.acquire()  # (not `async with`: one coroutine fewer per send)
        try:
            handle = self._idle.pop() if self._idle else self._new_handle()
            received = handle.received
            received.clear()
            # The request line carries the target as given: libcurl's own URL parser would
            # normalise escapes in the path (`%2e` to `%2E`).
            origin, target = split_target(url)
            setopt = handle.setopt
            # Options persist on a handle: the origin (parsed by libcurl when set) and the body
            # (copied when set) are set again only when they change.
            if handle.origin != origin:
                setopt(pycurl.URL, origin)
                handle.origin = origin
            if handle.body is not body:
                setopt(pycurl.POSTFIELDS, body)
                handle.body = body
            setopt(pycurl.REQUEST_TARGET, target)
            setopt(pycurl.HTTPHEADER, lines)
            try:
                await multi.perform(handle.curl)
            except CurlTransferError as error:
                handle.curl.close()
                raise _transport_error(error) from None
            except BaseException:
                handle.curl.close()
                raise
            status = handle.getinfo(pycurl.RESPONSE_CODE)
            if not multi.closed:
                self._idle.append(handle)
        finally:
            slots.release()
        return HttpAnswer(status, parse_header_lines(received))

    async def close(self) -> None:
        if self._multi is not None:
            self._multi.close()
        for handle in self._idle:
            handle.curl.close()
        self._idle = []


def _transport_error(error: CurlTransferError) -> TransportError:
    detail = _TOKEN_IN_TEXT.sub("token=...", error.message)
    if error.code == pycurl.E_OPERATION_TIMEDOUT:
        return TransportError(f"timed out (curl {error.code}: {detail})", timed_out=True)
    return TransportError(f"connection error (curl {error.code}: {detail})", timed_out=False)


class AiohttpWnsClient:
    """The same client over aiohttp (the fallback where pycurl is not available)."""

    def __init__(self, max_connections: int = 200, timeouts: Timeouts | None = None) -> None:
        self._max_connections = max_connections
        self._timeouts = timeouts or Timeouts()
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=_ssl_context(), limit=self._max_connections, keepalive_timeout=60)
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self._timeouts.connect, sock_read=self._timeouts.read
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            )
        return self._session

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> HttpAnswer:
        if not url.startswith("https://"):
            raise TransportError("connection error (only HTTPS is spoken)", timed_out=False)
        try:
            async with self._get_session().post(
                URL(url, encoded=True), headers=headers, data=body, allow_redirects=False, compress=False
            ) as response:
                await response.read()
                answer_headers: CIMultiDictProxy[str] = response.headers
                return HttpAnswer(response.status, answer_headers)
        except TimeoutError as error:
            raise TransportError(f"timed out ({type(error).__name__})", timed_out=True) from error
        except aiohttp.ClientError as error:
            raise TransportError(f"connection error ({type(error).__name__})", timed_out=False) from error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


WnsHttpClient: type[CurlWnsClient] | type[AiohttpWnsClient] = CurlWnsClient if pycurl is not None else AiohttpWnsClient
