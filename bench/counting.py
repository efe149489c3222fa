"""Count storage transactions: every request the Azure SDKs of this process send to Azurite.

Each REST request to a storage account is one billable transaction (a table entity-group
transaction of up to 100 rows, and a Get Messages of up to 32 messages, are one request each).
The count is taken at azure-core's aiohttp transport, below the SDKs' retry policy, so a
request retried after an answer counts twice, as it is billed; one that got no answer at all
(a connection error) is kept apart. Nothing in the app changes: the transport class
is wrapped in this process only, for the benchmark's lifetime.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.pipeline.transport import AioHttpTransport

# Requests the benchmark's stand-in for the host makes are counted by the driver itself (it
# knows an empty poll from a useful one); the transport count is the app's own requests.
_host_scope: ContextVar[bool] = ContextVar("bench_host_scope", default=False)


@contextmanager
def host_scope() -> Iterator[None]:
    """Storage requests made inside are the host's, not the app's: not counted here."""
    token = _host_scope.set(True)
    try:
        yield
    finally:
        _host_scope.reset(token)


def classify(method: str, url: str, queue_port: int, table_port: int) -> str | None:
    """A name for one storage request (`queue:PutMessage`, `table:Batch`, ...); None if not storage."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    query = parts.query
    segments = [s for s in path.split("/") if s][1:]  # drop the account name
    if parts.port == queue_port:
        if len(segments) >= 2 and segments[1] == "messages":
            if len(segments) == 3:
                return "queue:DeleteMessage" if method == "DELETE" else "queue:UpdateMessage"
            if method == "POST":
                return "queue:PutMessage"
            if method == "GET":
                return "queue:PeekMessages" if "peekonly=true" in query.lower() else "queue:GetMessages"
            return "queue:ClearMessages"
        if method == "PUT":
            return "queue:CreateQueue"
        if method == "GET":
            return "queue:GetQueueMetadata"
        return f"queue:{method}"
    if parts.port == table_port:
        if segments and segments[0] == "$batch":
            return "table:Batch"
        if segments and segments[0].startswith("Tables"):
            return "table:CreateTable" if method == "POST" else "table:Tables"
        keyed = bool(segments) and segments[0].endswith(")") and not segments[0].endswith("()")
        if method == "GET":
            return "table:GetEntity" if keyed else "table:QueryEntities"
        if method == "POST":
            return "table:InsertEntity"
        if method in ("PUT", "MERGE", "PATCH"):
            return "table:UpsertEntity"
        if method == "DELETE":
            return "table:DeleteEntity"
        return f"table:{method}"
    return None


class StorageCounter:
    """Counts storage requests by kind; `phase()` reads what one part of a run cost."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        # Requests that got no answer (connection errors), kept apart: not billable.
        self.unanswered: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._ports: tuple[int, int] | None = None
        self._original: Any = None

    def install(self, queue_port: int, table_port: int) -> None:
        """Wrap the transport's send (once per process)."""
        self._ports = (queue_port, table_port)
        if self._original is not None:
            return
        original = AioHttpTransport.send
        counter = self

        async def counted_send(transport: AioHttpTransport, request: Any, **kwargs: Any) -> Any:
            try:
                response = await original(transport, request, **kwargs)
            except Exception:
                # No answer (e.g. a kept-alive connection the emulator had just closed): never
                # reached the service, so not billed; the SDK's retry is counted when answered.
                counter.record(str(request.method), str(request.url), failed=True)
                raise
            counter.record(str(request.method), str(request.url))
            return response

        self._original = original
        AioHttpTransport.send = counted_send  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            AioHttpTransport.send = self._original  # type: ignore[method-assign]
            self._original = None

    def record(self, method: str, url: str, failed: bool = False) -> None:
        if self._ports is None or _host_scope.get():
            return
        kind = classify(method.upper(), url, *self._ports)
        if kind is not None:
            with self._lock:
                if failed:
                    self.unanswered[kind] += 1
                else:
                    self._counts[kind] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    @contextmanager
    def phase(self) -> Iterator[Counter[str]]:
        """Yields a Counter filled, on exit, with the requests made inside the block."""
        before = self.snapshot()
        result: Counter[str] = Counter()
        try:
            yield result
        finally:
            after = self.snapshot()
            result.update({k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)})


def total(counts: Counter[str]) -> int:
    return sum(counts.values())


def describe(counts: Counter[str]) -> str:
    """`3 (queue:GetMessages 1, ...)` for notes."""
    items = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return f"{total(counts)} ({items})" if items else "0"


storage_counter = StorageCounter()
