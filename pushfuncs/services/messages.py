"""The delivery queue message: one notification, a batch of channels, and the attempt number."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from pushfuncs.wns import NotificationType, WnsOptions

VERSION = 1


class MalformedMessage(ValueError):
    """A queue message this code cannot act on (bad JSON, unknown version, missing fields)."""


@dataclass(frozen=True)
class DeliveryTarget:
    installation_id: str
    channel_uri: str


@dataclass(frozen=True)
class DeliveryMessage:
    notification_id: str
    notification_type: NotificationType
    payload: bytes
    options: WnsOptions
    targets: tuple[DeliveryTarget, ...]
    attempt: int = 1
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "v": VERSION,
            "id": self.notification_id,
            "type": self.notification_type.value,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "options": self.options.to_dict(),
            "targets": [{"i": t.installation_id, "c": t.channel_uri} for t in self.targets],
            "attempt": self.attempt,
        }


def notification_id_of(body: bytes) -> str | None:
    """The notification id of a message, if one can be read at all (for failure records)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def parse_delivery_message(body: bytes) -> DeliveryMessage:
    try:
        data = json.loads(body)
    except ValueError as error:
        raise MalformedMessage(f"not JSON: {error}") from error
    if not isinstance(data, dict):
        raise MalformedMessage("not a JSON object")
    if data.get("v") != VERSION:
        raise MalformedMessage(f"unknown message version {data.get('v')!r}")
    try:
        targets = tuple(DeliveryTarget(str(t["i"]), str(t["c"])) for t in data["targets"])
        return DeliveryMessage(
            notification_id=str(data["id"]),
            notification_type=NotificationType(data["type"]),
            payload=base64.b64decode(data["payload"], validate=True),
            options=WnsOptions.from_dict(data.get("options") or {}),
            targets=targets,
            attempt=int(data.get("attempt", 1)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedMessage(f"missing or invalid field: {error}") from error
