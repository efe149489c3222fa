"""Running the sandbox: loopback sockets, TLS, and the in-process background-thread form."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from . import tls
from .app import create_app
from .client import SandboxClient
from .config import API_APP_ID_URI, API_CLIENT_ID, SandboxConfig
from .state import SandboxState

_BACKLOG = 1024
# In-flight requests (e.g. injected delays) get this long to finish when the sandbox stops.
_SHUTDOWN_SECONDS = 1.0
_BIND_ATTEMPTS = 5


def _listen_sockets(port: int) -> list[socket.socket]:
    """Bind 127.0.0.1 and, where the host has it, ::1 on one port, so `localhost` is fast either way."""
    for _ in range(_BIND_ATTEMPTS):
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            v4.bind(("127.0.0.1", port))
        except OSError:
            v4.close()
            raise
        chosen = v4.getsockname()[1]
        if not socket.has_ipv6:
            return [v4]
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            v6.bind(("::1", chosen))
        except OSError as exc:
            v6.close()
            if port == 0 and exc.errno == errno.EADDRINUSE:  # taken on ::1 only: try another free port
                v4.close()
                continue
            return [v4]
        return [v4, v6]
    raise OSError(f"could not bind one free port on both 127.0.0.1 and ::1 in {_BIND_ATTEMPTS} attempts")


@dataclass
class RunningServer:
    """A started sandbox inside the current event loop."""

    runner: web.AppRunner
    state: SandboxState
    port: int
    ca_path: Path

    @property
    def url(self) -> str:
        return self.state.public_url

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_server(config: SandboxConfig) -> RunningServer:
    ca = tls.load_or_create_ca(config.state_dir)
    context = tls.server_context(ca)
    state = SandboxState(config)
    sockets = _listen_sockets(config.port)
    port = sockets[0].getsockname()[1]
    state.set_port(port)
    runner = web.AppRunner(
        create_app(state),
        handle_signals=False,
        shutdown_timeout=_SHUTDOWN_SECONDS,
        access_log=logging.getLogger("aiohttp.access") if config.access_log else None,
    )
    await runner.setup()
    try:
        for sock in sockets:
            await web.SockSite(runner, sock, ssl_context=context, backlog=_BACKLOG).start()
    except BaseException:
        await runner.cleanup()
        raise
    return RunningServer(runner, state, port, config.state_dir / tls.CA_FILE)


def app_settings(
    url: str, tenant_id: str, client_id: str, client_secret: str, identity_header: str, ca_path: Path
) -> dict[str, str]:
    """The app settings that point the app at a sandbox running at `url`."""
    return {
        "WNS_TENANT_ID": tenant_id,
        "WNS_CLIENT_ID": client_id,
        "WNS_CLIENT_SECRET": client_secret,
        "WNS_AUTHORITY_HOST": url,
        "WNS_ALLOWED_HOSTS": url.removeprefix("https://"),
        "KEY_VAULT_URL": url,
        "IDENTITY_ENDPOINT": f"{url}/_sandbox/msi/token",
        "IDENTITY_HEADER": identity_header,
        "SSL_CERT_FILE": str(ca_path),
        "REQUESTS_CA_BUNDLE": str(ca_path),
        "DEVICE_SIGN_IN_ENABLED": "true",
        "API_AUTHORITY_HOST": url,
        "API_AUDIENCES": f"{API_CLIENT_ID},{API_APP_ID_URI}",
        "API_ALLOWED_TENANTS": tenant_id,
    }


@dataclass
class SandboxHandle:
    """A sandbox running on its own event loop in a background thread (for tests and tools)."""

    url: str
    port: int
    ca_path: Path
    tenant_id: str
    client_id: str
    client_secret: str
    identity_header: str
    managed_identity_client_id: str
    state_dir: Path
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _server: RunningServer = field(repr=False)
    _owns_state_dir: bool = field(default=False, repr=False)

    @property
    def authority(self) -> str:
        """The authority host to give azure-identity credentials (with disable_instance_discovery=True)."""
        return self.url

    @property
    def key_vault_url(self) -> str:
        return self.url

    @property
    def identity_endpoint(self) -> str:
        return f"{self.url}/_sandbox/msi/token"

    def client(self) -> SandboxClient:
        return SandboxClient(self.url, self.ca_path)

    def environment(self) -> dict[str, str]:
        """Settings that point the app at this sandbox, as in local.settings.sample.json."""
        return app_settings(
            self.url, self.tenant_id, self.client_id, self.client_secret, self.identity_header, self.ca_path
        )

    def stop(self) -> None:
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop)
            with contextlib.suppress(Exception):
                future.result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(port: int = 0, state_dir: str | Path | None = None, **options: Any) -> SandboxHandle:
    """Start the sandbox in a background thread and return once it accepts connections.

    `options` are SandboxConfig fields (tenant_id, client_id, client_secret, identity_header,
    token_lifetime, client_certificates, ...). Without `state_dir` a temporary one is used and
    removed on stop().
    """
    owns = state_dir is None
    directory = Path(tempfile.mkdtemp(prefix="wns-sandbox-")) if state_dir is None else Path(state_dir)
    if "client_certificates" in options:
        options["client_certificates"] = tuple(Path(p) for p in options["client_certificates"])
    config = replace(SandboxConfig(), port=port, state_dir=directory, **options)
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started["server"] = loop.run_until_complete(start_server(config))
        except BaseException as exc:  # handed to the caller's thread below
            started["error"] = exc
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="wns-sandbox", daemon=True)
    thread.start()
    ready.wait()
    if "error" in started:
        thread.join()
        if owns:
            shutil.rmtree(directory, ignore_errors=True)
        raise started["error"]
    server: RunningServer = started["server"]
    return SandboxHandle(
        url=server.url,
        port=server.port,
        ca_path=server.ca_path,
        tenant_id=config.tenant_id,
        client_id=config.client_id,
        client_secret=config.client_secret,
        identity_header=config.identity_header,
        managed_identity_client_id=config.managed_identity_client_id,
        state_dir=directory,
        _loop=loop,
        _thread=thread,
        _server=server,
        _owns_state_dir=owns,
    )
