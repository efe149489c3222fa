"""Values the app needs from host.json (deployed with it), read once."""

from __future__ import annotations

import functools
import json
from pathlib import Path

HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"
DEFAULT_MAX_DEQUEUE_COUNT = 5


@functools.cache
def max_dequeue_count() -> int:
    """`extensions.queues.maxDequeueCount`: tries before the host poisons a message."""
    try:
        host = json.loads(HOST_JSON.read_text())
    except (OSError, ValueError):
        return DEFAULT_MAX_DEQUEUE_COUNT
    return int(host.get("extensions", {}).get("queues", {}).get("maxDequeueCount", DEFAULT_MAX_DEQUEUE_COUNT))
