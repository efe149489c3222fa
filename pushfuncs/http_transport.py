"""The HTTP client every WNS send goes through: one pooled aiohttp session per process.

Measured (bench/): httpx's own pool manages about 1,000 requests/s per core, httpx over an
aiohttp transport about 2,000, aiohttp alone about 5,000-9,000; in the delivery hot path the
httpx layer (re-parsing each long channel URI) cost more than our own code. So the sender
talks to aiohttp directly, and:
- sends the channel URI exactly as stored (`encoded=True`: yarl would otherwise re-quote
  `%2f` to `/` and `%2b` to `%2B`, and WNS answers 404 to a re-encoded URI);
- never follows a redirect (it would carry our bearer token to another host);
- has explicit connect and read timeouts;
- trusts the CAs of SSL_CERT_FILE when set (the local sandbox), else the system's.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL


class TransportError(Exception):
    """No HTTP response: `timed_out` says whether it was a timeout or a connection error."""

    def __init__(self, message: str, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]  # case-insensitive


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 15.0


def _ssl_context() -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE") or None
    return ssl.create_default_context(cafile=cafile)


class WnsHttpClient:
    """POST bodies to channel URIs; one per process, shared by every delivery."""

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
