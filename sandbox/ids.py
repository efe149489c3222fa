"""Random identifiers shaped like the ones the real services hand out."""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from datetime import UTC, datetime


def access_token() -> str:
    """An opaque bearer token: random bytes only, nothing derived from a secret."""
    return secrets.token_urlsafe(96)


def channel_token() -> str:
    """A channel `token` query value in the form WNS uses.

    Live tokens are base64 of a binary blob starting with 0x03 0x06 ("AwYAAA..."), percent-encoded
    with lower-case hex (`%2b`, `%2f`, `%3d`). The blob length is chosen so the base64 always ends
    in `=` padding, and blobs are redrawn until `+` and `/` appear too, so every token carries all
    three escapes and any re-encoding by a client is noticed.
    """
    while True:
        raw = base64.b64encode(b"\x03\x06\x00\x00\x00" + os.urandom(129)).decode("ascii")
        if "+" in raw and "/" in raw:
            return raw.replace("+", "%2b").replace("/", "%2f").replace("=", "%3d")


def channel_id() -> str:
    return uuid.uuid4().hex


def secret_version() -> str:
    return uuid.uuid4().hex


def msg_id() -> str:
    """X-WNS-Msg-ID: WNS sends 16 upper-case hex digits (e.g. 3BE4E575385F67FE)."""
    return os.urandom(8).hex().upper()


def debug_trace() -> str:
    """X-WNS-Debug-Trace: an opaque alphanumeric string (live: `BN1WNS2011532`)."""
    return "SBXWNS" + os.urandom(4).hex().upper()


def correlation_vector() -> str:
    """A Correlation Vector 2.1 value: 22 base64 characters (128 bits) and `.0`."""
    return base64.b64encode(os.urandom(16)).decode("ascii")[:22] + ".0"


def trace_id() -> str:
    return str(uuid.uuid4())


def rfc3339(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
