"""The delivery queue message: one notification, a batch of channels, and the attempt number."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import NamedTuple

from pushfuncs.wns import NotificationType, WnsOptions

VERSION = 1


class MalformedMessage(ValueError):
    """A queue message this code cannot act on (bad JSON, unknown version, missing fields)."""


class DeliveryTarget(NamedTuple):  # immutable; a named tuple builds faster than a frozen dataclass
    installation_id: str
    channel_uri: str
    # A template send: this device's own rendering (and its template's type).
    payload: bytes | None = None
    notification_type: NotificationType | None = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"i": self.installation_id, "c": self.channel_uri}
        if self.payload is not None and self.notification_type is not None:
            data["p"] = base64.b64encode(self.payload).decode("ascii")
            data["t"] = self.notification_type.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DeliveryTarget:
        if "p" in data:
            return cls(
                str(data["i"]),
                str(data["c"]),
                base64.b64decode(str(data["p"]), validate=True),
                NotificationType(data["t"]),
            )
        return cls(str(data["i"]), str(data["c"]))


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
    # Which retry group of the batch this is: retries of one batch with different delays
    # travel in separate messages, and each records its outcomes in its own row.
    part: str = ""

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
            "targets": [t.to_dict() for t in self.targets],
            "attempt": self.attempt,
            "claim": self.claim,
            "batch": self.batch_id,
            "seq": self.seq,
            "part": self.part,
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
        targets = tuple(DeliveryTarget.from_dict(t) for t in data["targets"])
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
            part=str(data.get("part", "")),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as error:
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
    template: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    # An installationIds target whose list is read from the summary row (too long for a message).
    ids_in_summary: bool = False
    # Sent with `sendAt`: it may be cancelled until it fires, so its first message claims it.
    scheduled: bool = False
    # Which source this message expands, alone; None: the first message, which starts one lane
    # per source so that shards expand in parallel.
    lane: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "v": VERSION,
            "kind": "fanout",
            "idsInSummary": self.ids_in_summary,
            "scheduled": self.scheduled,
            "lane": self.lane,
            "id": self.notification_id,
            "type": self.notification_type.value,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "options": self.options.to_dict(),
            "target": self.target,
            "source": self.source,
            "after": self.after,
            "seq": self.seq,
            "template": self.template,
            "properties": self.properties,
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
            template=data.get("template"),
            properties={str(k): str(v) for k, v in (data.get("properties") or {}).items()},
            ids_in_summary=bool(data.get("idsInSummary", False)),
            scheduled=bool(data.get("scheduled", False)),
            lane=None if data.get("lane") is None else int(data["lane"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise MalformedMessage(f"missing or invalid field: {error}") from error
