"""An httpx transport over aiohttp that sends the request URL byte for byte.

httpx's own connection pool manages about 1,000 requests/s per core; aiohttp about ten times
that (bench/). The `httpx-aiohttp` package hands aiohttp the URL as a string, which yarl
re-quotes (`%2f` becomes `/`, `%2b` becomes `%2B`), and WNS answers 404 to a channel URI that
was re-encoded. So this transport passes the URL as already encoded, and keeps the httpx API.
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx
from yarl import URL


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests through one aiohttp session; never follow redirects."""

    def __init__(self, max_connections: int = 200, keepalive_seconds: float = 60.0) -> None:
        # httpx's SSL context honours SSL_CERT_FILE, as the rest of the app does.
        self._ssl: ssl.SSLContext = httpx.create_ssl_context()
        self._max_connections = max_connections
        self._keepalive_seconds = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl,
                limit=self._max_connections,
                keepalive_timeout=self._keepalive_seconds,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        body = await request.aread()
        try:
            async with self._get_session().request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                compress=False,
                timeout=timeout,
            ) as response:
                content = await response.read()
        except TimeoutError as exc:
            raise httpx.TimeoutException(str(exc) or "timed out", request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientPayloadError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.NetworkError(str(exc), request=request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            content=content,
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
