"""Channels (what a Windows client would obtain from CreateChannelAsync) and their inboxes."""

from __future__ import annotations

import base64
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import ids
from .faults import RuleQueue

RawHeaders = tuple[tuple[bytes, bytes], ...]


@dataclass(slots=True)
class Delivery:
    """One accepted notification, kept raw; formatted only when someone reads the inbox."""

    received_at: float
    raw_headers: RawHeaders
    body: bytes
    token_sha256: str | None
    msg_id: str
    ms_cv: str


@dataclass(slots=True)
class Channel:
    channel_id: str
    raw_target: str
    uri: str
    client_id: str
    created_at: float
    expires_at: float
    inbox: deque[Delivery]
    faults: RuleQueue = field(default_factory=RuleQueue)
    received: int = 0

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at

    def describe(self) -> dict[str, Any]:
        return {
            "channelId": self.channel_id,
            "channelUri": self.uri,
            "expiresAt": ids.rfc3339(self.expires_at),
        }


class ChannelStore:
    def __init__(self, inbox_limit: int) -> None:
        self._inbox_limit = inbox_limit
        self._by_id: dict[str, Channel] = {}
        # Keyed by the exact request target ("/?token=...") as sent on the wire.
        self._by_target: dict[str, Channel] = {}

    def create(self, base_url: str, lifetime: float, client_id: str) -> Channel:
        now = time.time()
        target = "/?token=" + ids.channel_token()
        channel = Channel(
            channel_id=ids.channel_id(),
            raw_target=target,
            uri=base_url + target,
            client_id=client_id,
            created_at=now,
            expires_at=now + lifetime,
            inbox=deque(maxlen=self._inbox_limit),
        )
        self._by_id[channel.channel_id] = channel
        self._by_target[target] = channel
        return channel

    def get(self, channel_id: str) -> Channel | None:
        return self._by_id.get(channel_id)

    def all(self) -> list[Channel]:
        return list(self._by_id.values())

    def by_target(self, raw_target: str) -> Channel | None:
        return self._by_target.get(raw_target)

    def delete(self, channel_id: str) -> bool:
        channel = self._by_id.pop(channel_id, None)
        if channel is None:
            return False
        del self._by_target[channel.raw_target]
        return True

    def clear(self) -> None:
        self._by_id.clear()
        self._by_target.clear()

    def __len__(self) -> int:
        return len(self._by_id)


def format_delivery(delivery: Delivery) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in delivery.raw_headers:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name.lower() == "authorization":
            continue
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    lower = {k.lower(): v for k, v in headers.items()}
    return {
        "receivedAt": ids.rfc3339(delivery.received_at),
        "type": lower.get("x-wns-type"),
        "contentType": lower.get("content-type"),
        "headers": headers,
        "authorization": {
            "present": delivery.token_sha256 is not None,
            "tokenSha256Prefix": delivery.token_sha256,
        },
        "msgId": delivery.msg_id,
        "msCv": delivery.ms_cv,
        "size": len(delivery.body),
        "payload": delivery.body.decode("utf-8", errors="replace"),
        "payloadBase64": base64.b64encode(delivery.body).decode("ascii"),
    }
