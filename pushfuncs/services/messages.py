"""The delivery queue message: one notification, a batch of channels, and the attempt number."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

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
    # Fan-out batches claim their targets first, so a batch re-enqueued after a crash sends nothing twice.
    claim: bool = False
    batch_id: str = ""
    seq: int | None = None  # the fan-out batch number; None for a direct send

    @property
    def batch_key(self) -> str:
        return "direct" if self.seq is None else f"{self.seq:08d}"

    def to_dict(self) -> dict[str, object]:
        return {
            "v": VERSION,
            "id": self.notification_id,
            "type": self.notification_type.value,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "options": self.options.to_dict(),
            "targets": [{"i": t.installation_id, "c": t.channel_uri} for t in self.targets],
            "attempt": self.attempt,
            "claim": self.claim,
            "batch": self.batch_id,
            "seq": self.seq,
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
            claim=bool(data.get("claim", False)),
            batch_id=str(data.get("batch", "")),
            seq=None if data.get("seq") is None else int(data["seq"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedMessage(f"missing or invalid field: {error}") from error


@dataclass(frozen=True)
class FanoutMessage:
    """Expand a target (user, tag, expression, id list) page by page into delivery batches."""

    notification_id: str
    notification_type: NotificationType
    payload: bytes
    options: WnsOptions
    target: dict[str, object]
    source: int = 0  # which partition (or id chunk) of the target
    after: str = ""  # the last RowKey done in that partition
    seq: int = 0  # number of the next delivery batch

    def to_dict(self) -> dict[str, object]:
        return {
            "v": VERSION,
            "kind": "fanout",
            "id": self.notification_id,
            "type": self.notification_type.value,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "options": self.options.to_dict(),
            "target": self.target,
            "source": self.source,
            "after": self.after,
            "seq": self.seq,
        }


def parse_fanout_message(body: bytes) -> FanoutMessage:
    try:
        data = json.loads(body)
    except ValueError as error:
        raise MalformedMessage(f"not JSON: {error}") from error
    if not isinstance(data, dict) or data.get("v") != VERSION or data.get("kind") != "fanout":
        raise MalformedMessage("not a version 1 fan-out message")
    try:
        return FanoutMessage(
            notification_id=str(data["id"]),
            notification_type=NotificationType(data["type"]),
            payload=base64.b64decode(data["payload"], validate=True),
            options=WnsOptions.from_dict(data.get("options") or {}),
            target=dict(data["target"]),
            source=int(data.get("source", 0)),
            after=str(data.get("after", "")),
            seq=int(data.get("seq", 0)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedMessage(f"missing or invalid field: {error}") from error
