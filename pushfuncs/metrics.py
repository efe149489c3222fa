"""Operation counters: per WNS outcome (Notification Hubs' metric names), per storage operation,
per token and Key Vault request.

One set of counts serves both readers, so they always agree: `GET /api/metrics` reads them in
this process, and OpenTelemetry counters report them at each collection, to Application Insights
once pushfuncs.telemetry has set up the exporter (until then through the global OpenTelemetry
API, which does nothing without an SDK).

On OpenTelemetry a name is its own counter (`wns.badchannel`: Notification Hubs' names stay what
users query and alert on), except the storage operations `storage.<service>.<operation>`: one
counter, `storage.requests`, with the attributes `service` and `operation`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable

from opentelemetry import metrics as otel
from opentelemetry.metrics import CallbackOptions, Meter, Observation

METER_NAME = "pushfuncs"
STORAGE_REQUESTS = "storage.requests"

Attributes = dict[str, str]


def instrument_for(name: str) -> tuple[str, Attributes]:
    """The OpenTelemetry counter a name counts on, and its attributes there."""
    family, _, rest = name.partition(".")
    service, _, operation = rest.partition(".")
    if family == "storage" and service and operation:
        return STORAGE_REQUESTS, {"service": service, "operation": operation}
    return name, {}


class Metrics:
    def __init__(self, meter: Meter | None = None) -> None:
        self._counts: Counter[str] = Counter()
        self._cleared: Counter[str] = Counter()  # what reset() took from _counts: totals never go down
        self._lock = threading.Lock()
        self._meter = meter or otel.get_meter(METER_NAME)
        self._observed: set[str] = set()
        self._series: dict[str, list[tuple[str, Attributes]]] = {}  # instrument -> its names

    def add(self, name: str, amount: int = 1) -> None:
        # The OpenTelemetry counters are asynchronous: they read these counts when collected.
        # A synchronous Counter.add here would cost 15-25 times this whole method (measured),
        # on a path taken for every WNS send.
        with self._lock:
            self._counts[name] += amount
        if name not in self._observed:
            self._observe(name)

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        """Clears the local counts only: the OpenTelemetry counters keep counting up."""
        with self._lock:
            self._cleared.update(self._counts)
            self._counts.clear()

    def bind_meter(self, meter: Meter | None) -> None:
        """Report on `meter` from now on (None: the global OpenTelemetry meter again)."""
        with self._lock:
            self._meter = meter or otel.get_meter(METER_NAME)
            meter, instruments = self._meter, list(self._series)
        for instrument in instruments:
            self._create(meter, instrument)

    def _observe(self, name: str) -> None:
        instrument, attributes = instrument_for(name)
        with self._lock:
            if name in self._observed:
                return
            series = self._series.setdefault(instrument, [])
            series.append((name, attributes))
            self._observed.add(name)
            meter, new = self._meter, len(series) == 1
        if new:
            self._create(meter, instrument)

    def _create(self, meter: Meter, instrument: str) -> None:
        unit, description = ("{request}", "Azure Storage requests") if instrument == STORAGE_REQUESTS else ("", "")
        meter.create_observable_counter(
            instrument, callbacks=[self._callback(meter, instrument)], unit=unit, description=description
        )

    def _callback(self, meter: Meter, instrument: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                if meter is not self._meter:  # rebound since: only the current meter reports
                    return []
                return [
                    Observation(self._cleared[name] + self._counts[name], attributes)
                    for name, attributes in self._series[instrument]
                ]

        return observe


# One set of counters per process, shared by every invocation.
metrics = Metrics()
