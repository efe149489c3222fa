"""Calling a user function the way the Python worker does, with output bindings and one log line."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions._abc import RetryContext, RpcException, TraceContext

from devhost.functions import FunctionSpec, QueueTarget
from devhost.storage import output_messages

log = logging.getLogger("devhost")

T = TypeVar("T")
QueueSink = Callable[[QueueTarget, list[str | bytes]], Awaitable[None]]


class OutBinding(func.Out[T], Generic[T]):
    """The value holder passed for a `func.Out[...]` parameter."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]


class _TraceContext(TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> RpcException:
        raise AttributeError("no retry in progress")


class InvocationContext(func.Context):
    """The `context` argument: invocation id, function name and directory."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._local = threading.local()
        self._local.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> RetryContext:
        return _RetryContext()


@dataclass(frozen=True)
class InvocationResult:
    invocation_id: str
    succeeded: bool
    # The HTTP response the function produced (return value or its http Out), when it has one.
    http_response: Any = None


class Invoker:
    """Runs functions: `async def` on the event loop, `def` in the thread pool, as the worker does."""

    def __init__(self, executor: Executor, queue_sink: QueueSink, function_directory: str) -> None:
        self._executor = executor
        self._queue_sink = queue_sink
        self._function_directory = function_directory

    async def invoke(self, spec: FunctionSpec, trigger_value: Any) -> InvocationResult:
        """Call the function, then flush its outputs; any exception fails the invocation (and is logged)."""
        invocation_id = str(uuid.uuid4())
        outs: dict[str, OutBinding[Any]] = {t.binding_name: OutBinding() for t in spec.queue_outputs}
        if spec.http_output and spec.http_output != "$return":
            outs[spec.http_output] = OutBinding()
        kwargs: dict[str, Any] = {spec.trigger_arg: trigger_value, **outs}
        if spec.context_arg:
            kwargs[spec.context_arg] = InvocationContext(invocation_id, spec.name, self._function_directory)
        started = time.perf_counter()
        try:
            returned = await self._call(spec, kwargs)
            for target in spec.queue_outputs:
                messages = output_messages(outs[target.binding_name].get())
                if messages:
                    await self._queue_sink(target, messages)
        except Exception as error:  # any failure of user code fails the invocation
            self._log(spec, invocation_id, started, error)
            return InvocationResult(invocation_id, succeeded=False)
        self._log(spec, invocation_id, started, None)
        http_response = returned if spec.http_output == "$return" else None
        if spec.http_output and spec.http_output != "$return":
            http_response = outs[spec.http_output].get()
        return InvocationResult(invocation_id, succeeded=True, http_response=http_response)

    async def _call(self, spec: FunctionSpec, kwargs: dict[str, Any]) -> Any:
        if spec.is_async:
            return await spec.function(**kwargs)
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        call = functools.partial(context.run, spec.function, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    @staticmethod
    def _log(spec: FunctionSpec, invocation_id: str, started: float, error: Exception | None) -> None:
        elapsed = round((time.perf_counter() - started) * 1000)
        outcome = "Failed" if error else "Succeeded"
        message = "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)"
        if error is None:
            log.info(message, spec.name, outcome, invocation_id, elapsed)
        else:
            log.error(message, spec.name, outcome, invocation_id, elapsed, exc_info=error)
