"""Templates at their edges: single-quoted attributes, the 5,000-byte limit exactly, stored form,
every error's message, and the incoming-call properties' defaults and case rules."""

import pytest
from defusedxml.ElementTree import fromstring

from pushfuncs.templates import (
    INCOMING_CALL_TEMPLATE,
    Template,
    TemplateError,
    incoming_call_properties,
    render,
)
from pushfuncs.wns import MAX_PAYLOAD_BYTES, NotificationType


def test_a_value_cannot_leave_a_single_quoted_attribute() -> None:
    template = Template(NotificationType.TOAST, "<toast launch='$(id)'/>")
    payload = render(template, {"id": "x' evil='1"})
    root = fromstring(payload)
    assert root.get("evil") is None
    assert root.get("launch") == "x' evil='1"
    assert payload == b"<toast launch='x&apos; evil=&apos;1'/>"


def test_a_value_cannot_leave_a_double_quoted_attribute() -> None:
    payload = render(Template(NotificationType.TILE, '<tile a="$(v)"/>'), {"v": 'x" b="1'})
    assert payload == b'<tile a="x&quot; b=&quot;1"/>'
    assert fromstring(payload).get("b") is None


@pytest.mark.parametrize("kind", [NotificationType.TOAST, NotificationType.TILE, NotificationType.BADGE])
def test_xml_types_escape_markup(kind: NotificationType) -> None:
    assert render(Template(kind, "<x>$(v)</x>"), {"v": "<&>"}) == b"<x>&lt;&amp;&gt;</x>"


def test_raw_templates_carry_quotes_and_xml_forbidden_characters_as_they_are() -> None:
    raw = Template(NotificationType.RAW, "$(v)")
    assert render(raw, {"v": "'\"\x01"}) == b"'\"\x01"


def test_a_character_xml_cannot_carry_is_refused_in_xml_and_names_the_property() -> None:
    with pytest.raises(TemplateError, match="'v' holds a character XML cannot carry"):
        render(Template(NotificationType.TOAST, "<toast>$(v)</toast>"), {"v": "a\x01"})


def test_a_lone_surrogate_is_refused_with_its_reason() -> None:
    with pytest.raises(TemplateError, match="not valid Unicode"):
        render(Template(NotificationType.RAW, "$(v)"), {"v": "\ud800"})


def test_renders_as_utf8() -> None:
    assert render(Template(NotificationType.RAW, "$(v)"), {"v": "é€"}) == "é€".encode()


def test_an_empty_rendering_is_refused() -> None:
    with pytest.raises(TemplateError, match="renders to an empty payload"):
        render(Template(NotificationType.RAW, "$(missing)"), {})


def test_the_payload_limit_is_exact_in_bytes() -> None:
    raw = Template(NotificationType.RAW, "$(v)")
    assert len(render(raw, {"v": "a" * MAX_PAYLOAD_BYTES})) == MAX_PAYLOAD_BYTES == 5000
    with pytest.raises(TemplateError, match=f"renders to {MAX_PAYLOAD_BYTES + 1} bytes; WNS accepts at most 5000"):
        render(raw, {"v": "a" * (MAX_PAYLOAD_BYTES + 1)})
    # Counted in UTF-8 bytes after escaping, not in characters.
    with pytest.raises(TemplateError):
        render(raw, {"v": "é" * 2501})
    xml = Template(NotificationType.TOAST, "<toast>$(v)</toast>")
    inner = MAX_PAYLOAD_BYTES - len("<toast></toast>")
    assert len(render(xml, {"v": "&" * (inner // 5)})) <= MAX_PAYLOAD_BYTES
    with pytest.raises(TemplateError):
        render(xml, {"v": "&" * (inner // 5 + 1)})


def test_templates_round_trip_through_their_stored_form() -> None:
    template = Template(NotificationType.BADGE, '<badge value="$(n)"/>')
    stored = template.to_dict()
    assert stored == {"type": "badge", "body": '<badge value="$(n)"/>'}
    assert Template.from_dict(stored) == template
    assert Template.from_dict({"type": "raw", "body": "b"}) == Template(NotificationType.RAW, "b")


@pytest.mark.parametrize("missing", ["callerName", "callId"])
def test_incoming_call_needs_caller_and_call_id(missing: str) -> None:
    properties = {"callerName": "Ada", "callId": "42"}
    for absent in ({}, {missing: ""}):
        given = {k: v for k, v in properties.items() if k != missing} | absent
        with pytest.raises(TemplateError, match=f"needs the property {missing}$"):
            incoming_call_properties(given)


def test_incoming_call_defaults_to_audio() -> None:
    derived = incoming_call_properties({"callerName": "Ada", "callId": "42"})
    assert derived == {"callerName": "Ada", "callId": "42", "video": "false", "callKindText": "Incoming call"}


@pytest.mark.parametrize("call_type", ["audio", "AUDIO", "Audio"])
def test_incoming_audio_calls_in_any_case(call_type: str) -> None:
    derived = incoming_call_properties({"callerName": "Ada", "callId": "42", "callType": call_type})
    assert derived["video"] == "false"
    assert derived["callKindText"] == "Incoming call"


@pytest.mark.parametrize("call_type", ["video", "VIDEO", "Video"])
def test_incoming_video_calls_in_any_case(call_type: str) -> None:
    derived = incoming_call_properties({"callerName": "Ada", "callId": "42", "callType": call_type})
    assert derived["video"] == "true"
    assert derived["callKindText"] == "Incoming video call"
    assert derived["callType"] == call_type


@pytest.mark.parametrize("call_type", ["", "phone", "audiovideo", "XXaudioXX"])
def test_other_call_types_are_refused(call_type: str) -> None:
    with pytest.raises(TemplateError, match='callType must be "audio" or "video"'):
        incoming_call_properties({"callerName": "Ada", "callId": "42", "callType": call_type})


def test_the_incoming_call_toast_renders_accept_and_decline() -> None:
    properties = incoming_call_properties({"callerName": "Ada <A&B>", "callId": "4'2", "callType": "video"})
    root = fromstring(render(INCOMING_CALL_TEMPLATE, properties))
    assert root.get("launch") == "action=open&callId=4'2"
    texts = [text.text for text in root.iter("text")]
    assert texts == ["Ada <A&B>", "Incoming video call"]
    accept, decline = root.iter("action")
    assert accept.get("arguments") == "action=accept&callId=4'2&video=true"
    assert decline.get("arguments") == "action=decline&callId=4'2"
