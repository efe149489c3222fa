"""The parts of host.json the local host honours, with the Functions host's defaults and limits.

Keys are case-insensitive, and `AzureFunctionsJobHost__section__key` environment variables
override host.json values, as in the real host.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from devhost.timespan import parse_timespan

log = logging.getLogger("devhost")

ENV_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"
MAX_BATCH_SIZE = 32
MIN_POLLING_INTERVAL = timedelta(milliseconds=100)


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues`; defaults are those of the storage queues extension (v5)."""

    batch_size: int = 16
    new_batch_threshold: int | None = None
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    message_encoding: str = "base64"

    @property
    def effective_new_batch_threshold(self) -> int:
        """Unset: (batchSize / 2) x processor count, integer division, as the extension computes it."""
        if self.new_batch_threshold is not None:
            return self.new_batch_threshold
        return (self.batch_size // 2) * (os.cpu_count() or 1)


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()
    # host.json `functions`: when non-empty, only these functions run.
    functions: tuple[str, ...] = ()


def _get(section: Mapping[str, Any], key: str) -> Any:
    for name, value in section.items():
        if name.lower() == key.lower():
            return value
    return None


def _section(document: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    current: Any = document
    for key in path:
        current = _get(current, key) if isinstance(current, Mapping) else None
    return current if isinstance(current, Mapping) else {}


def apply_environment_overrides(document: dict[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Overlay `AzureFunctionsJobHost__a__b=value` variables onto the host.json document."""
    source = os.environ if environ is None else environ
    for variable, value in source.items():
        if not variable.lower().startswith(ENV_OVERRIDE_PREFIX.lower()):
            continue
        path = variable[len(ENV_OVERRIDE_PREFIX) :].split("__")
        node = document
        for key in path[:-1]:
            existing = next((k for k in node if k.lower() == key.lower()), key)
            if not isinstance(node.get(existing), dict):
                node[existing] = {}
            node = node[existing]
        leaf = next((k for k in node if k.lower() == path[-1].lower()), path[-1])
        node[leaf] = value
    return document


def _int(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"host.json {name}: {value!r} is not an integer") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"{minimum}-{maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"host.json {name}: {number} is outside {bound}")
    return number


def _timespan(value: Any, name: str) -> timedelta:
    if not isinstance(value, str):
        raise ValueError(f"host.json {name}: expected a TimeSpan string such as '00:00:02'")
    try:
        return parse_timespan(value)
    except ValueError as error:
        raise ValueError(f"host.json {name}: {error}") from None


def parse_queue_options(section: Mapping[str, Any]) -> QueueOptions:
    defaults = QueueOptions()
    batch = _get(section, "batchSize")
    threshold = _get(section, "newBatchThreshold")
    dequeue = _get(section, "maxDequeueCount")
    visibility = _get(section, "visibilityTimeout")
    polling = _get(section, "maxPollingInterval")
    encoding = _get(section, "messageEncoding")
    options = QueueOptions(
        batch_size=defaults.batch_size if batch is None else _int(batch, "batchSize", 1, MAX_BATCH_SIZE),
        new_batch_threshold=None if threshold is None else _int(threshold, "newBatchThreshold", 0),
        max_dequeue_count=defaults.max_dequeue_count if dequeue is None else _int(dequeue, "maxDequeueCount", 1),
        visibility_timeout=defaults.visibility_timeout
        if visibility is None
        else _timespan(visibility, "visibilityTimeout"),
        max_polling_interval=defaults.max_polling_interval
        if polling is None
        else _timespan(polling, "maxPollingInterval"),
        message_encoding=defaults.message_encoding if encoding is None else str(encoding).lower(),
    )
    if options.max_polling_interval < MIN_POLLING_INTERVAL:
        raise ValueError("host.json maxPollingInterval must not be less than 00:00:00.1")
    if options.visibility_timeout < timedelta(0):
        raise ValueError("host.json visibilityTimeout must not be negative")
    if options.message_encoding not in ("base64", "none"):
        raise ValueError("host.json messageEncoding must be 'base64' or 'none'")
    return options


def load_host_config(root: Path, environ: Mapping[str, str] | None = None) -> HostConfig:
    """Read `<root>/host.json` (defaults if it is missing) with environment overrides applied."""
    path = root / "host.json"
    if path.exists():
        document = json.loads(path.read_text(encoding="utf-8"))
    else:
        log.warning("No host.json in %s: using the host's defaults.", root)
        document = {}
    document = apply_environment_overrides(document, environ)
    http = _section(document, "extensions", "http")
    prefix = _get(http, "routePrefix")
    functions = _get(document, "functions") or []
    return HostConfig(
        route_prefix="api" if prefix is None else str(prefix).strip("/"),
        queues=parse_queue_options(_section(document, "extensions", "queues")),
        functions=tuple(str(name) for name in functions),
    )
