"""The WNS send endpoint: POST to a channel URI, answered the way the push header reference says.

Order of checks: method, bearer token, channel (by exact request target), channel owner, headers,
framing, size, payload; then any injected fault; then delivery to the channel's inbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

from aiohttp import web

from . import ids, wns_checks
from .channels import Channel, Delivery
from .config import WNS_RESOURCE
from .faults import FaultRule
from .state import SandboxState, state_of
from .tokens import TokenCheck

# Not documented by Microsoft; these are the challenges live WNS was observed to send
# (raisingthefloor/morphic-push-relay-server, WnsRelayClient.cs).
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_request",error_description="Invalid token"'
EXPIRED_TOKEN_CHALLENGE = 'Bearer error="invalid_request",error_description="Token expired"'

# Descriptions from the reference's response-code table, or as observed from live WNS.
_METHOD_TEXT = (
    "Invalid method (GET, CREATE); only POST (Windows or Windows Phone) or DELETE (Windows Phone only) is allowed."
)
_NOT_FOUND_TEXT = "The channel URI is not valid or is not recognized by WNS."
_EXPIRED_TEXT = "The channel expired."
_FORBIDDEN_TEXT = "Channel URL incompatible with caller app"
_TOO_LARGE_TEXT = "The notification payload exceeds the 5000 byte size limit."


class _Answer:
    """Builds responses carrying the diagnostic headers WNS adds to every answer."""

    __slots__ = ("ms_cv", "msg_id", "state")

    def __init__(self, request: web.Request, state: SandboxState) -> None:
        self.state = state
        self.msg_id = ids.msg_id()
        # "If a CV is provided as part of the request then WNS will use this value."
        self.ms_cv = request.headers.get("MS-CV") or ids.correlation_vector()

    def __call__(self, status: int, description: str | None = None, **extra: str) -> web.Response:
        self.state.stats.wns_status[status] += 1
        headers = {"X-WNS-Msg-ID": self.msg_id, "X-WNS-Debug-Trace": ids.debug_trace(), "MS-CV": self.ms_cv}
        if description:
            headers["X-WNS-Error-Description"] = description
        headers.update(extra)
        return web.Response(status=status, headers=headers)

    def status(
        self, wns_status: str, request_status: bool, device_status: str | None, description: str | None
    ) -> web.Response:
        extra = {"X-WNS-Status": wns_status, "X-WNS-NotificationStatus": wns_status}
        if request_status:
            extra["X-WNS-DeviceConnectionStatus"] = device_status or "connected"
        self.state.stats.wns_outcome[wns_status] += 1
        return self(200, description, **extra)


async def send(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    answer = _Answer(request, state)
    if request.method != "POST":
        return answer(405, _METHOD_TEXT, Allow="POST")
    token = _bearer(request)
    check, info = state.tokens.check(token, WNS_RESOURCE) if token else (TokenCheck.UNKNOWN, None)
    if check is not TokenCheck.VALID:
        challenge = EXPIRED_TOKEN_CHALLENGE if check is TokenCheck.EXPIRED else INVALID_TOKEN_CHALLENGE
        return answer(401, None, **{"WWW-Authenticate": challenge})
    channel = state.channels.by_target(request.raw_path)
    if channel is None:
        return answer(404, _NOT_FOUND_TEXT)
    if channel.is_expired(time.time()):
        return answer(410, _EXPIRED_TEXT)
    assert info is not None
    if info.client_id != channel.client_id:
        return answer(403, _FORBIDDEN_TEXT)
    headers = request.headers
    problem = wns_checks.check_headers(headers) or wns_checks.check_framing(headers, request.content_length)
    if problem:
        return answer(400, problem)
    if (request.content_length or 0) > wns_checks.MAX_PAYLOAD_BYTES:
        return answer(413, _TOO_LARGE_TEXT)
    body = await request.read()
    problem = wns_checks.check_payload(headers["X-WNS-Type"], body)
    if problem:
        return answer(400, problem)
    request_status = headers.get("X-WNS-RequestForStatus") == "true"
    rule = channel.faults.take() or (state.fault_mix.draw() if state.fault_mix else None)
    if rule is not None:
        faulted = await _apply_fault(request, answer, rule, request_status)
        if faulted is not None:
            return faulted
    _deliver(channel, request, body, token, answer)
    if rule is None:
        return answer.status("received", request_status, None, None)
    return answer.status("received", request_status, rule.device_status, rule.error_description)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _apply_fault(
    request: web.Request, answer: _Answer, rule: FaultRule, request_status: bool
) -> web.StreamResponse | None:
    """Answer as `rule` says, or return None to continue with normal delivery (delay-only rules)."""
    if rule.delay_seconds:
        await asyncio.sleep(rule.delay_seconds)
    if rule.drop:
        answer.state.stats.wns_outcome["connectionDropped"] += 1
        if request.transport is not None:
            request.transport.close()
        # aiohttp finds the transport closed when it writes this and drops it silently.
        return web.Response(status=204)
    if rule.delivers:
        return None
    answer.state.stats.wns_outcome["faulted"] += 1
    if rule.status == 200:
        assert rule.wns_status is not None
        return answer.status(rule.wns_status, request_status, rule.device_status, rule.error_description)
    assert rule.status is not None
    extra = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
    return answer(rule.status, rule.error_description, **extra)


def _deliver(channel: Channel, request: web.Request, body: bytes, token: str | None, answer: _Answer) -> None:
    digest = hashlib.sha256(token.encode()).hexdigest()[:12] if token else None
    channel.inbox.append(Delivery(time.time(), request.raw_headers, body, digest, answer.msg_id, answer.ms_cv))
    channel.received += 1
