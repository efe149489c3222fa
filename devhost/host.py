"""A local stand-in for the Azure Functions host, for development only.

It runs a v2-model `func.FunctionApp` on one asyncio event loop, driven by the app's own
binding metadata and host.json: HTTP triggers (routes, methods, auth levels), queue triggers
on a storage account or Azurite (host polling, retry and poison semantics), queue outputs and
timer triggers. `func start` (Azure Functions Core Tools) is the real thing; use it where it
can be installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from types import TracebackType

import azure.functions as func

from devhost.functions import FunctionLoadError, FunctionSpec, QueueTarget, describe_functions
from devhost.hostconfig import HostConfig, load_host_config
from devhost.http_server import DEFAULT_MAX_BODY, HttpFrontend, HttpRoute, build_route
from devhost.invocation import Invoker
from devhost.keys import HostKeys, load_or_create_keys
from devhost.ncrontab import ScheduleError, parse_schedule
from devhost.queue_listener import DEFAULT_LEASE, QueueListener
from devhost.route_rules import check_http_routes
from devhost.settings import EnvironmentOverlay
from devhost.storage import (
    ConnectionSettingError,
    QueueClients,
    connection_string,
    encode_message,
)
from devhost.timer_trigger import TimerRunner

log = logging.getLogger("devhost")

DEFAULT_PORT = 7071
DEFAULT_KEYS_PATH = Path(".devhost") / "keys.json"


def _is_disabled(name: str, environ: Mapping[str, str]) -> bool:
    value = environ.get(f"AzureWebJobs.{name}.Disabled", "")
    return value.strip().lower() in ("true", "1")


class LocalFunctionsHost:
    """Runs a FunctionApp's HTTP, queue and timer functions as the Functions host would.

    `settings` are applied to os.environ on start (an existing variable wins unless
    `override_environment`), and restored on stop. `keys_path` is relative to `root` unless
    absolute. The app's functions are read once, here.
    """

    def __init__(
        self,
        app: func.FunctionApp,
        root: Path | str = ".",
        settings: Mapping[str, str] | None = None,
        port: int = DEFAULT_PORT,
        keys_path: Path | str | None = None,
        *,
        bind: str = "127.0.0.1",
        override_environment: bool = False,
        max_request_body_size: int = DEFAULT_MAX_BODY,
        method_not_allowed_status: int = 404,
        drain_timeout: float = 30.0,
        message_lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self.root = Path(root).resolve()
        self.settings = dict(settings or {})
        self.requested_port = port
        keys = Path(keys_path) if keys_path is not None else DEFAULT_KEYS_PATH
        self.keys_path = keys if keys.is_absolute() else self.root / keys
        self.bind = bind
        self._override_environment = override_environment
        self._max_request_body_size = max_request_body_size
        self._method_not_allowed_status = method_not_allowed_status
        self._drain_timeout = drain_timeout
        self._message_lease = message_lease
        # The app's registry refuses a second get_functions() call.
        self._functions = list(app.get_functions())

        self.port: int | None = None
        self.keys: HostKeys | None = None
        self.config: HostConfig | None = None
        self.specs: dict[str, FunctionSpec] = {}
        self.function_errors: dict[str, str] = {}
        self.http_routes: list[HttpRoute] = []
        self.queue_listeners: list[QueueListener] = []
        self.timers: list[TimerRunner] = []
        self._environment = EnvironmentOverlay()
        self._clients: QueueClients | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._http: HttpFrontend | None = None
        self._encoding = "base64"

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the host is not started")
        return f"http://{self.bind}:{self.port}"

    def function_url(self, route: HttpRoute) -> str:
        return f"{self.base_url}/{route.template.template}"

    async def start(self) -> None:
        """Apply settings, read host.json and the functions, and start every trigger."""
        if self.port is not None:
            raise RuntimeError("the host is already started")
        skipped = self._environment.apply(self.settings, override=self._override_environment)
        for name in skipped:
            log.info("Skipping '%s' from settings: it is already set in the environment.", name)
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        environ = os.environ
        self.config = load_host_config(self.root, environ)
        self._encoding = self.config.queues.message_encoding
        functions = [f for f in self._functions if self._selected(f.get_function_name(), environ)]
        specs, self.function_errors = describe_functions(functions, environ)
        route_errors = check_http_routes([(s.name, s.trigger) for s in specs if s.trigger_type == "httpTrigger"])
        self.function_errors.update(route_errors)
        specs = [s for s in specs if s.name not in route_errors]
        self.keys = load_or_create_keys(self.keys_path)
        threads = environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
        self._executor = ThreadPoolExecutor(
            max_workers=int(threads) if threads else None, thread_name_prefix="devhost-function"
        )
        self._clients = QueueClients()
        invoker = Invoker(self._executor, self._send_queue_output, str(self.root))
        for spec in specs:
            try:
                self._add_trigger(spec, invoker, environ)
                self.specs[spec.name] = spec
            except (FunctionLoadError, ConnectionSettingError, ScheduleError) as error:
                self.function_errors[spec.name] = str(error)
        for name, error in self.function_errors.items():
            log.error("The '%s' function is in error: %s", name, error)

        self._http = HttpFrontend(
            self.http_routes,
            self.keys,
            invoker,
            max_body_size=self._max_body_size_checked(),
            method_not_allowed_status=self._method_not_allowed_status,
        )
        self.port = await self._http.start(self.bind, self.requested_port)
        self._log_banner()
        await asyncio.gather(*(listener.start() for listener in self.queue_listeners))
        for timer in self.timers:
            timer.start()

    def _max_body_size_checked(self) -> int:
        if self._max_request_body_size <= 0:
            raise ValueError("max_request_body_size must be positive")
        return self._max_request_body_size

    def _selected(self, name: str, environ: Mapping[str, str]) -> bool:
        assert self.config is not None
        if self.config.functions and name not in self.config.functions:
            return False
        if _is_disabled(name, environ):
            log.info("Function '%s' is disabled.", name)
            return False
        return True

    def _add_trigger(self, spec: FunctionSpec, invoker: Invoker, environ: Mapping[str, str]) -> None:
        assert self.config is not None and self._clients is not None
        for target in spec.queue_outputs:
            connection_string(target.connection, environ)
        if spec.trigger_type == "httpTrigger":
            self.http_routes.append(build_route(spec, self.config.route_prefix))
        elif spec.trigger_type == "queueTrigger":
            connection = connection_string(spec.trigger.get("connection"), environ)
            listener = QueueListener(
                spec,
                self.config.queues,
                self._clients,
                connection,
                invoker,
                lease=self._message_lease,
            )
            self.queue_listeners.append(listener)
        elif spec.trigger_type == "timerTrigger":
            schedule = parse_schedule(str(spec.trigger["schedule"]))
            self.timers.append(TimerRunner(spec, schedule, invoker))

    async def _send_queue_output(self, target: QueueTarget, messages: list[str | bytes]) -> None:
        assert self._clients is not None
        connection = connection_string(target.connection, os.environ)
        texts = [encode_message(m, self._encoding) for m in messages]
        await self._clients.send(connection, target.queue_name, texts)
        for listener in self.queue_listeners:
            if listener.queue_name == target.queue_name and listener.connection == connection:
                listener.notify()

    def _log_banner(self) -> None:
        assert self.keys is not None
        log.info("Local Functions host (development only; `func start` is the real host).")
        log.info("Functions:")
        for route in self.http_routes:
            methods = ",".join(route.allowed_methods)
            log.info(
                "    %s: [%s] %s (%s)",
                route.spec.name,
                methods,
                self.function_url(route),
                route.auth_level,
            )
        for listener in self.queue_listeners:
            log.info("    %s: queueTrigger on '%s'", listener.spec.name, listener.queue_name)
        for timer in self.timers:
            startup = ", runOnStartup" if timer.run_on_startup else ""
            log.info("    %s: timerTrigger %s%s", timer.spec.name, timer.schedule, startup)
        if any(route.auth_level != "anonymous" for route in self.http_routes):
            log.info(
                "Function key (x-functions-key header or ?code=): %s  (master key in %s)",
                self.keys.default_function_key,
                self.keys_path,
            )

    async def stop(self) -> None:
        """Stop receiving, let running invocations finish (bounded), close clients, restore settings."""
        try:
            if self._http:
                await self._http.stop()
            await asyncio.gather(
                *(listener.stop(self._drain_timeout) for listener in self.queue_listeners),
                *(timer.stop(self._drain_timeout) for timer in self.timers),
            )
            if self._clients:
                await self._clients.close()
        finally:
            if self._executor:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._http = None
            self._clients = None
            self._executor = None
            self.http_routes, self.queue_listeners, self.timers = [], [], []
            self.specs = {}
            self.port = None
            self._environment.restore()

    async def __aenter__(self) -> LocalFunctionsHost:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def serve(self, stop_event: asyncio.Event | None = None) -> None:
        """Start, run until `stop_event` is set (or SIGINT/SIGTERM), then stop."""
        stop = stop_event or asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            log.info("Stopping the local Functions host.")
            await self.stop()

    def run(self) -> None:
        """Serve until interrupted (blocking)."""
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self.serve())
