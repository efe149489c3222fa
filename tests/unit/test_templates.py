"""Templates: placeholders, XML escaping of hostile values, the built-in incoming-call toast."""

import pytest
from defusedxml.ElementTree import fromstring

from pushfuncs.templates import (
    INCOMING_CALL_TEMPLATE,
    Template,
    TemplateError,
    incoming_call_properties,
    render,
)
from pushfuncs.wns import NotificationType

TOAST = Template(
    NotificationType.TOAST,
    '<toast launch="id=$(id)"><visual><binding template="ToastGeneric"><text>$(greeting), $(name)</text>'
    "</binding></visual></toast>",
)
HOSTILE = "</text><evil/>&amp; \"quoted\" 'single' <![CDATA[x]]> $(name)"


def test_placeholders_are_replaced_and_missing_ones_are_empty() -> None:
    xml = render(TOAST, {"greeting": "Hello", "id": "7"}).decode()
    assert "<text>Hello, </text>" in xml
    assert 'launch="id=7"' in xml


def test_hostile_values_stay_text_in_elements_and_attributes() -> None:
    payload = render(TOAST, {"greeting": HOSTILE, "name": "Bob", "id": HOSTILE})
    root = fromstring(payload)
    assert root.find(".//evil") is None
    assert root.find(".//text").text == f"{HOSTILE}, Bob"  # type: ignore[union-attr]
    assert root.get("launch") == f"id={HOSTILE}"


def test_raw_templates_are_not_escaped() -> None:
    raw = Template(NotificationType.RAW, '{"who": "$(name)"}')
    assert render(raw, {"name": "<b>"}) == b'{"who": "<b>"}'


def test_rendering_over_the_wns_limit_is_refused() -> None:
    with pytest.raises(TemplateError):
        render(TOAST, {"name": "x" * 5000})


def test_incoming_call_toast() -> None:
    props = incoming_call_properties({"callerName": "Ada & Co", "callId": "c-1", "callType": "video"})
    root = fromstring(render(INCOMING_CALL_TEMPLATE, props))
    assert root.get("scenario") == "incomingCall"
    texts = [t.text for t in root.iter("text")]
    assert texts == ["Ada & Co", "Incoming video call"]
    actions = {a.get("content"): a for a in root.iter("action")}
    assert actions["Accept"].get("arguments") == "action=accept&callId=c-1&video=true"
    assert actions["Accept"].get("activationType") == "foreground"
    assert actions["Decline"].get("arguments") == "action=decline&callId=c-1"
    assert root.find("audio").get("loop") == "true"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "props", [{"callId": "1"}, {"callerName": "A"}, {"callerName": "A", "callId": "1", "callType": "fax"}]
)
def test_incoming_call_needs_its_properties(props: dict[str, str]) -> None:
    with pytest.raises(TemplateError):
        incoming_call_properties(props)
