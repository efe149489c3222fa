"""Notification templates: bodies with `$(property)` placeholders, rendered per device.

As in Notification Hubs, a missing property renders as an empty string. Values are XML-escaped
for toast, tile and badge templates (safe in element text and in quoted attributes), and
inserted as they are in raw templates. Pure code: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from pushfuncs.wns import MAX_PAYLOAD_BYTES, NotificationType

PLACEHOLDER = re.compile(r"\$\(([A-Za-z0-9_.-]{1,64})\)")
_ATTRIBUTE_ENTITIES = {'"': "&quot;", "'": "&apos;"}
INCOMING_CALL = "incomingCall"
# Characters XML 1.0 cannot carry, even escaped: most C0 controls, surrogates, U+FFFE and U+FFFF.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class TemplateError(ValueError):
    """The template or its rendering is unusable; the message says why."""


@dataclass(frozen=True)
class Template:
    notification_type: NotificationType
    body: str

    def to_dict(self) -> dict[str, str]:
        return {"type": self.notification_type.value, "body": self.body}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Template:
        return cls(NotificationType(data["type"]), data["body"])


def render(template: Template, properties: dict[str, str]) -> bytes:
    """The payload for one device; raises TemplateError if it exceeds WNS's size limit."""
    xml = template.notification_type.is_xml

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        text = properties.get(name, "")
        if xml and _NOT_XML_CHAR.search(text):
            raise TemplateError(f"property {name!r} holds a character XML cannot carry")
        return escape(text, _ATTRIBUTE_ENTITIES) if xml else text

    try:
        payload = PLACEHOLDER.sub(value, template.body).encode("utf-8")
    except UnicodeEncodeError as error:
        raise TemplateError("renders to text that is not valid Unicode (a lone surrogate)") from error
    if not payload:
        raise TemplateError("renders to an empty payload")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise TemplateError(f"renders to {len(payload)} bytes; WNS accepts at most {MAX_PAYLOAD_BYTES}")
    return payload


# The incoming-call toast the Windows App SDK and the calling SDK show: the incomingCall
# scenario (stays on screen, rings), caller, call kind, Accept and Decline buttons whose
# arguments reach the app's activation handler.
INCOMING_CALL_TEMPLATE = Template(
    NotificationType.TOAST,
    '<toast scenario="incomingCall" launch="action=open&amp;callId=$(callId)">'
    '<visual><binding template="ToastGeneric">'
    "<text>$(callerName)</text>"
    "<text>$(callKindText)</text>"
    "</binding></visual>"
    "<actions>"
    '<action content="Accept" arguments="action=accept&amp;callId=$(callId)&amp;video=$(video)"'
    ' activationType="foreground"/>'
    '<action content="Decline" arguments="action=decline&amp;callId=$(callId)" activationType="background"/>'
    "</actions>"
    '<audio src="ms-winsoundevent:Notification.Looping.Call" loop="true"/>'
    "</toast>",
)


def incoming_call_properties(properties: dict[str, str]) -> dict[str, str]:
    """Check the built-in incomingCall template's properties and derive its display text."""
    for required in ("callerName", "callId"):
        if not properties.get(required):
            raise TemplateError(f"the incomingCall template needs the property {required}")
    kind = properties.get("callType", "audio").lower()
    if kind not in ("audio", "video"):
        raise TemplateError('callType must be "audio" or "video"')
    video = kind == "video"
    return {
        **properties,
        "video": "true" if video else "false",
        "callKindText": "Incoming video call" if video else "Incoming call",
    }
