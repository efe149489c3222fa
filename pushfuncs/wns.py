"""The WNS protocol: build a send request, classify the response. No Azure imports, no state.

Sources: Microsoft's "Push notification service request and response headers" page and the
facts collected in the team's WNS reference (response table ii). Every response WNS can give
maps to one `Action` in `RESPONSE_ACTIONS`, a table meant to be audited line by line.
"""

from __future__ import annotations

import base64
import enum
import os
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

MAX_PAYLOAD_BYTES = 5000
MAX_TAG_LENGTH = 16
WNS_SCOPE = "https://wns.windows.com/.default"


class NotificationType(enum.Enum):
    """The four WNS notification types, with their `X-WNS-Type` and `Content-Type`."""

    TOAST = "toast"
    TILE = "tile"
    BADGE = "badge"
    RAW = "raw"

    @property
    def wns_type(self) -> str:
        return f"wns/{self.value}"

    @property
    def content_type(self) -> str:
        return "application/octet-stream" if self is NotificationType.RAW else "text/xml"

    @property
    def is_xml(self) -> bool:
        return self is not NotificationType.RAW


@dataclass(frozen=True)
class WnsOptions:
    """The optional `X-WNS-*` request headers a Windows sender may set (already validated)."""

    cache_policy: str | None = None  # "cache" | "no-cache"
    ttl: int | None = None  # seconds, counted from when WNS receives the request
    tag: str | None = None  # <= 16 alphanumeric characters
    group: str | None = None  # <= 16 alphanumeric characters
    request_for_status: bool | None = None
    priority: int | None = None  # 1 high .. 4 very low

    def to_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.cache_policy is not None:
            headers["X-WNS-Cache-Policy"] = self.cache_policy
        if self.ttl is not None:
            headers["X-WNS-TTL"] = str(self.ttl)
        if self.tag is not None:
            headers["X-WNS-Tag"] = self.tag
        if self.group is not None:
            headers["X-WNS-Group"] = self.group
        if self.request_for_status is not None:
            headers["X-WNS-RequestForStatus"] = "true" if self.request_for_status else "false"
        if self.priority is not None:
            headers["X-WNS-PRIORITY"] = str(self.priority)
        return headers

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> WnsOptions:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})  # type: ignore[arg-type]


# MS-CV only needs to be unique, not unguessable: a seeded PRNG saves a system call per send.
_cv_random = random.Random(secrets.randbits(128))
os.register_at_fork(after_in_child=lambda: _cv_random.seed(secrets.randbits(128)))


def new_correlation_vector() -> str:
    """A fresh MS-CV (correlation vector v2: 22 base64 characters of 128 random bits, then `.0`)."""
    base = base64.b64encode(_cv_random.getrandbits(128).to_bytes(16, "big")).decode("ascii").rstrip("=")
    return f"{base}.0"


def build_wns_headers(
    notification_type: NotificationType,
    options: WnsOptions,
    access_token: str,
    correlation_vector: str | None = None,
) -> dict[str, str]:
    """Every header of one WNS send (`Content-Length` is added by the HTTP client)."""
    headers = {
        "Authorization": f"Bearer {access_token}",
        "Content-Type": notification_type.content_type,
        "X-WNS-Type": notification_type.wns_type,
        "MS-CV": correlation_vector or new_correlation_vector(),
    }
    headers.update(options.to_headers())
    return headers


class Action(enum.Enum):
    """What the sender does after one WNS response."""

    DELIVERED = "delivered"  # WNS accepted it (not a delivery receipt: WNS gives none)
    DROPPED = "dropped"  # final: WNS or the client dropped it; never retry
    RETRY = "retry"  # transient: back off (honouring Retry-After) and send again
    REFRESH_TOKEN = "refresh_token"  # our token was refused: get a fresh one, resend once
    REMOVE_CHANNEL = "remove_channel"  # channel expired, revoked or unknown: delete it
    STOP_SENDING = "stop_sending"  # our sending domain is blocked: stop everything, alert
    FAIL = "fail"  # final: the request is wrong (or forbidden); never retry


@dataclass(frozen=True)
class Rule:
    action: Action
    reason: str
    # The metric this outcome counts under: Notification Hubs' WNS metric names.
    metric: str


# HTTP status -> action. 200 is refined by X-WNS-Status in `classify_wns_response`.
RESPONSE_ACTIONS: dict[int, Rule] = {
    200: Rule(Action.DELIVERED, "received", "wns.success"),
    400: Rule(Action.FAIL, "bad request: invalid or conflicting headers", "wns.invalidnotificationformat"),
    401: Rule(Action.REFRESH_TOKEN, "access token invalid or expired", "wns.invalidtoken"),
    403: Rule(Action.FAIL, "forbidden: token valid but not for this channel's app", "wns.wrongtoken"),
    404: Rule(Action.REMOVE_CHANNEL, "channel not found", "wns.badchannel"),
    405: Rule(Action.FAIL, "method not allowed", "wns.pnserror"),
    406: Rule(Action.RETRY, "app throttled", "wns.throttled"),
    410: Rule(Action.REMOVE_CHANNEL, "channel expired or revoked", "wns.expiredchannel"),
    412: Rule(Action.RETRY, "device unreachable (precondition failed)", "wns.pnserror"),
    413: Rule(Action.FAIL, "payload exceeds the 5000-byte limit", "wns.invalidnotificationsize"),
    429: Rule(Action.RETRY, "app throttled (too many requests)", "wns.throttled"),
    500: Rule(Action.RETRY, "WNS internal error", "wns.pnserror"),
    503: Rule(Action.RETRY, "WNS unavailable", "wns.pnserror"),
}

# 200 refined by X-WNS-Status (or the legacy X-WNS-NotificationStatus).
STATUS_ACTIONS: dict[str, Rule] = {
    "received": Rule(Action.DELIVERED, "received", "wns.success"),
    "dropped": Rule(Action.DROPPED, "dropped", "wns.dropped"),
    "channelthrottled": Rule(Action.RETRY, "channel throttled", "wns.channelthrottled"),
}

# Responses outside the table.
UNKNOWN_CLIENT_ERROR = Rule(Action.FAIL, "unexpected WNS client error", "wns.pnserror")
UNKNOWN_SERVER_ERROR = Rule(Action.RETRY, "unexpected WNS server error", "wns.pnserror")
REDIRECT_REFUSED = Rule(Action.FAIL, "redirect refused (the bearer token never follows one)", "wns.pnserror")
UNKNOWN_SUCCESS = Rule(Action.FAIL, "unexpected WNS status", "wns.pnserror")
NETWORK_ERROR = Rule(Action.RETRY, "network error", "wns.pnserror")
TIMEOUT = Rule(Action.RETRY, "timed out", "wns.pnserror")
# Notification Hubs has no metric for this one; ours is counted once, under its own name.
DOMAIN_BLOCKED = Rule(Action.STOP_SENDING, "sending domain blocked by WNS", "wns.domainblocked")


class WnsResult(NamedTuple):
    """One classified WNS response, with everything worth keeping for the delivery record.

    Immutable; a named tuple rather than a frozen dataclass, which costs about three times as
    much to build (one per send)."""

    action: Action
    reason: str
    metric: str
    status_code: int | None = None
    wns_status: str | None = None
    error_description: str | None = None
    msg_id: str | None = None
    debug_trace: str | None = None
    ms_cv: str | None = None
    device_connection_status: str | None = None
    retry_after: float | None = None  # only on an answer that is retried

    def describe(self) -> str:
        """A one-line, token-free summary for logs and failure reasons."""
        parts = [f"WNS {self.status_code}" if self.status_code else "no WNS response", self.reason]
        if self.error_description:
            parts.append(self.error_description)
        return ": ".join(parts)


def _retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds (an HTTP date is not used by WNS; ignore what isn't a number)."""
    for name in ("retry-after", "x-wns-continue-after"):
        value = headers.get(name)
        if value is not None:
            try:
                seconds = float(value.strip())
            except ValueError:
                continue
            if seconds >= 0:
                return seconds
    return None


def classify_wns_response(status_code: int, headers: Mapping[str, str]) -> WnsResult:
    """Map one WNS response to the action the sender must take.

    `headers` must be case-insensitive; never assume a header is present.
    """
    wns_status = (headers.get("x-wns-status") or headers.get("x-wns-notificationstatus") or "").strip()
    wns_status = wns_status.lower() or None
    description = headers.get("x-wns-error-description")
    if status_code == 200:
        rule = STATUS_ACTIONS.get(wns_status or "received", UNKNOWN_SUCCESS)
    elif status_code == 410 and description and "domain blocked" in description.lower():
        rule = DOMAIN_BLOCKED
    elif status_code in RESPONSE_ACTIONS:
        rule = RESPONSE_ACTIONS[status_code]
    elif 300 <= status_code < 400:
        rule = REDIRECT_REFUSED
    elif 400 <= status_code < 500:
        rule = UNKNOWN_CLIENT_ERROR
    elif status_code >= 500:
        rule = UNKNOWN_SERVER_ERROR
    else:
        rule = UNKNOWN_SUCCESS
    return WnsResult(
        action=rule.action,
        reason=rule.reason,
        metric=rule.metric,
        status_code=status_code,
        wns_status=wns_status,
        error_description=description,
        msg_id=headers.get("x-wns-msg-id"),
        debug_trace=headers.get("x-wns-debug-trace"),
        ms_cv=headers.get("ms-cv"),
        device_connection_status=headers.get("x-wns-deviceconnectionstatus"),
        retry_after=_retry_after_seconds(headers) if rule.action is Action.RETRY else None,
    )


def classify_transport_error(timed_out: bool, detail: str = "") -> WnsResult:
    """A send that got no response: timeouts and connection errors are retried."""
    rule = TIMEOUT if timed_out else NETWORK_ERROR
    return WnsResult(
        action=rule.action, reason=f"{rule.reason} ({detail})" if detail else rule.reason, metric=rule.metric
    )


def backoff_seconds(
    attempt: int,
    retry_after: float | None = None,
    base: float = 2.0,
    cap: float = 900.0,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry number `attempt` (1-based): `Retry-After` if WNS gave one, else
    exponential backoff with full jitter, never above `cap`."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    return (rng or random).uniform(ceiling / 2, ceiling)


class Answer(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


class HttpPoster(Protocol):
    """The one injected I/O dependency: POST a body, return status and case-insensitive headers,
    raise an exception with a `timed_out` attribute when nothing came back."""

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer: ...


async def post_to_channel(client: HttpPoster, channel_uri: str, headers: Mapping[str, str], body: bytes) -> WnsResult:
    """POST one notification to one channel URI and classify what came back."""
    try:
        answer = await client.post(channel_uri, headers, body)
    except Exception as error:
        timed_out = getattr(error, "timed_out", None)
        if timed_out is None:
            raise
        return classify_transport_error(bool(timed_out), str(error))
    return classify_wns_response(answer.status, answer.headers)
