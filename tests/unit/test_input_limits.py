"""Every documented limit at its exact boundary (the value at the limit accepted, one past refused),
limits counted on the stored form, and a regression test for each input that once raised."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pushfuncs.channel_uri import InvalidChannelUri, parse_allowed_hosts, validate_channel_uri
from pushfuncs.errors import ApiError
from pushfuncs.storage.installations import templates_to_json
from pushfuncs.tag_expression import InvalidTagExpression, parse_tag_expression
from pushfuncs.templates import Template, TemplateError, render
from pushfuncs.validation import (
    MAX_STORED_STRING_CHARS,
    parse_installation_request,
    parse_json_object,
    parse_rfc3339,
    parse_send_request,
    parse_templates,
    stored_json,
    stored_length,
    validate_id,
    validate_idempotency_key,
)
from pushfuncs.wns import NotificationType

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOSTS = parse_allowed_hosts(None)
CHANNEL = "https://db5.notify.windows.com/?token=abc"
TOAST = "<toast><visual><binding template='ToastGeneric'><text>Hi</text></binding></visual></toast>"
OVERFLOWING_DATES = ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+00:01"]


def send(**fields: Any) -> bytes:
    body: dict[str, Any] = {"type": "raw", "payload": "x", "target": {"installationId": "dev"}}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def install(**fields: Any) -> bytes:
    return json.dumps({"channelUri": CHANNEL, **fields}).encode()


def refusal(call: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    assert 400 <= caught.value.status < 500
    return caught.value


# Stored lengths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "units"), [("", 0), ("abc", 3), ("é", 1), ("\U0001f600", 2), ("\ud800", 1), ("\\u00e9", 6)]
)
def test_stored_length_counts_utf16_code_units(text: str, units: int) -> None:
    assert stored_length(text) == units


def test_the_stored_json_form_escapes_what_a_request_held_raw() -> None:
    assert stored_json({"k": 'é\\"'}) == '{"k":"\\u00e9\\\\\\""}'
    assert stored_length(stored_json({"k": "é" * 10})) == len('{"k":""}') + 60


# Body, ids, tags ------------------------------------------------------------------------------


def test_body_at_64_kib_is_read_and_one_byte_more_is_413() -> None:
    padded = send()[:-1] + b" " * (64 * 1024 - len(send())) + b"}"
    assert len(padded) == 64 * 1024
    assert parse_json_object(padded)["payload"] == "x"
    assert refusal(parse_json_object, padded[:-1] + b" }").status == 413


def test_ids_of_128_characters_pass_and_129_do_not() -> None:
    assert validate_id("a" * 128, "id") == "a" * 128
    assert refusal(validate_id, "a" * 129, "id").field == "id"
    assert refusal(validate_id, "", "id").field == "id"


def test_60_tags_of_120_characters_pass_and_one_more_of_either_does_not() -> None:
    tags = [f"{i:02d}" + "t" * 118 for i in range(60)]
    assert parse_installation_request(install(tags=tags), HOSTS, NOW).tags == sorted(tags)
    assert refusal(parse_installation_request, install(tags=[*tags, "x"]), HOSTS, NOW).field == "tags"
    assert refusal(parse_installation_request, install(tags=["t" * 121]), HOSTS, NOW).field == "tags[0]"


def test_a_channel_uri_of_2048_characters_passes_and_2049_does_not() -> None:
    longest = CHANNEL + "x" * (2048 - len(CHANNEL))
    assert validate_channel_uri(longest, HOSTS) == longest
    with pytest.raises(InvalidChannelUri):
        validate_channel_uri(longest + "x", HOSTS)


# Dates ----------------------------------------------------------------------------------------


def test_expiry_up_to_30_days_and_the_skew_passes_and_a_microsecond_more_does_not() -> None:
    latest = NOW + timedelta(days=30, minutes=5)
    request = parse_installation_request(install(expiresAt=latest.isoformat()), HOSTS, NOW)
    assert request.expires_at == NOW + timedelta(days=30)  # clamped to the channel's lifetime
    beyond = (latest + timedelta(microseconds=1)).isoformat()
    assert refusal(parse_installation_request, install(expiresAt=beyond), HOSTS, NOW).field == "expiresAt"
    assert refusal(parse_installation_request, install(expiresAt=NOW.isoformat()), HOSTS, NOW).field == "expiresAt"


def test_send_at_up_to_7_days_ahead_passes_and_a_microsecond_more_does_not() -> None:
    latest = NOW + timedelta(days=7)
    assert parse_send_request(send(sendAt=latest.isoformat()), NOW).send_at == latest
    beyond = (latest + timedelta(microseconds=1)).isoformat()
    assert refusal(parse_send_request, send(sendAt=beyond), NOW).field == "sendAt"


@pytest.mark.parametrize("value", OVERFLOWING_DATES)
def test_dates_outside_the_calendar_in_utc_are_refused_not_raised(value: str) -> None:
    assert refusal(parse_rfc3339, value, "sendAt").field == "sendAt"
    assert refusal(parse_send_request, send(sendAt=value), NOW).field == "sendAt"
    assert refusal(parse_installation_request, install(expiresAt=value), HOSTS, NOW).field == "expiresAt"


# Payloads and options -------------------------------------------------------------------------


def test_payloads_of_5000_bytes_pass_and_5001_do_not() -> None:
    assert len(parse_send_request(send(payload="é" * 2500), NOW).payload) == 5000
    assert refusal(parse_send_request, send(payload="é" * 2500 + "x"), NOW).field == "payload"
    encoded = base64.b64encode(b"x" * 5000).decode()
    assert len(parse_send_request(send(payload=None, payloadBase64=encoded), NOW).payload) == 5000
    too_big = base64.b64encode(b"x" * 5001).decode()
    assert refusal(parse_send_request, send(payload=None, payloadBase64=too_big), NOW).field == "payloadBase64"


@pytest.mark.parametrize(
    ("name", "lowest", "highest"), [("X-WNS-TTL", 1, 2**31 - 1), ("X-WNS-PRIORITY", 1, 4), ("ttl", 1, 2**31 - 1)]
)
def test_integer_options_at_their_bounds(name: str, lowest: int, highest: int) -> None:
    for good in (lowest, highest, str(highest)):
        assert parse_send_request(send(options={name: good}), NOW).options.to_dict()
    for bad in (lowest - 1, highest + 1, str(highest + 1), True, float(lowest), "1e3"):
        assert refusal(parse_send_request, send(options={name: bad}), NOW).field == f"options.{name}"


@pytest.mark.parametrize("name", ["X-WNS-Tag", "X-WNS-Group"])
def test_tag_and_group_options_of_16_characters_pass_and_17_do_not(name: str) -> None:
    assert parse_send_request(send(options={name: "A1" * 8}), NOW).options.to_headers()[name] == "A1" * 8
    for bad in ("A1" * 8 + "x", "", "abc\n"):
        assert refusal(parse_send_request, send(options={name: bad}), NOW).field == f"options.{name}"


def test_idempotency_keys_of_255_characters_pass_and_256_do_not() -> None:
    assert validate_idempotency_key("k" * 255) == "k" * 255
    assert validate_idempotency_key(None) is None
    for bad in ("k" * 256, "", "k\n", "\ud800", "k\x00"):
        assert refusal(validate_idempotency_key, bad).field == "Idempotency-Key"


# Targets ----------------------------------------------------------------------------------------


def test_1000_installation_ids_pass_and_1001_do_not() -> None:
    ids = [f"i{n}" for n in range(1000)]
    assert len(parse_send_request(send(target={"installationIds": ids}), NOW).target.installation_ids) == 1000
    refused = refusal(parse_send_request, send(target={"installationIds": [*ids, "x"]}), NOW)
    assert refused.field == "target.installationIds"


def test_tag_expression_limits_at_their_boundaries() -> None:
    longest = "a" * 120 + " || " + "b" * 120 + " " * (1000 - 244)
    assert len(longest) == 1000
    parse_tag_expression(longest)
    with pytest.raises(InvalidTagExpression, match="longer than 1000"):
        parse_tag_expression(longest + " ")
    parse_tag_expression("(" * 32 + "a" + ")" * 32)
    parse_tag_expression("!" * 30 + "((a && b))")
    for deep in ("(" * 33 + "a" + ")" * 33, "!" * 32 + "(a && b)"):
        with pytest.raises(InvalidTagExpression, match="deeper than 32"):
            parse_tag_expression(deep)


@pytest.mark.parametrize("expression", ["(" * 400 + "a" + ")" * 400, "!" * 998 + "a", "(" * 499 + "a"])
def test_deeply_nested_tag_expressions_are_refused_not_raised(expression: str) -> None:
    with pytest.raises(InvalidTagExpression):
        parse_tag_expression(expression)
    field = refusal(parse_send_request, send(target={"tagExpression": expression}), NOW).field
    assert field == "target.tagExpression"


# Templates and properties -----------------------------------------------------------------------


def templates_stored_at(size: int) -> dict[str, dict[str, str]]:
    """Two raw templates whose stored JSON form is exactly `size` characters."""
    empty = {"a": {"type": "raw", "body": ""}, "b": {"type": "raw", "body": ""}}
    room = size - len(json.dumps(empty, separators=(",", ":")))
    first = "é" * 2500  # 5,000 bytes; 15,000 characters stored as \u00e9
    rest = room - 6 * 2500
    second = "é" * (rest // 6) + "x" * (rest % 6)
    return {"a": {"type": "raw", "body": first}, "b": {"type": "raw", "body": second}}


def test_templates_are_limited_on_their_stored_form_at_the_exact_boundary() -> None:
    at_limit = templates_stored_at(30_000)
    parsed = parse_templates(at_limit)
    assert stored_length(templates_to_json(parsed)) == 30_000
    # The request held fewer than 10,000 characters: the old count, on the request, let this through.
    assert sum(len(t["body"]) for t in at_limit.values()) < 10_000
    one_more = templates_stored_at(30_001)
    assert refusal(parse_templates, one_more).field == "templates"


def test_templates_whose_stored_form_passes_a_table_property_are_refused() -> None:
    # Each body is within 5,000 bytes, together under 30,000 characters as sent, over 32K stored.
    backslashes = {f"t{i}": {"type": "raw", "body": "\\" * 2990} for i in range(10)}
    assert sum(len(t["body"]) for t in backslashes.values()) < 30_000
    assert stored_length(stored_json(backslashes)) > MAX_STORED_STRING_CHARS
    assert refusal(parse_installation_request, install(templates=backslashes), HOSTS, NOW).field == "templates"


def test_ten_templates_and_names_of_64_characters_pass_and_one_more_does_not() -> None:
    ten = {f"{i}" + "n" * 63: {"type": "raw", "body": "x"} for i in range(10)}
    assert len(parse_templates(ten)) == 10
    assert refusal(parse_templates, {**ten, "eleven": {"type": "raw", "body": "x"}}).field == "templates"
    assert refusal(parse_templates, {"n" * 65: {"type": "raw", "body": "x"}}).field == "templates." + "n" * 65
    assert parse_templates({"t": {"type": "raw", "body": "x" * 5000}})
    assert refusal(parse_templates, {"t": {"type": "raw", "body": "x" * 5001}}).field == "templates.t.body"


def properties_stored_at(size: int) -> dict[str, str]:
    room = size - len('{"k":""}')
    return {"k": "é" * (room // 6) + "x" * (room % 6)}


def test_properties_are_limited_on_their_stored_form_at_the_exact_boundary() -> None:
    at_limit = properties_stored_at(8_000)
    request = parse_send_request(send(type=None, payload=None, template="t", properties=at_limit), NOW)
    assert stored_length(stored_json(request.properties)) == 8_000
    one_more = properties_stored_at(8_001)
    refused = refusal(parse_send_request, send(type=None, payload=None, template="t", properties=one_more), NOW)
    assert refused.field == "properties"


# Regressions: inputs that once raised ------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://db5.notify.windows.com]/?token=abc",
        "https://[db5.notify.windows.com/?token=abc",
        "https://db5.notify.windows.com/[?token=abc",
        CHANNEL + "\n",
    ],
)
def test_brackets_and_a_trailing_newline_in_a_channel_uri_are_refused(uri: str) -> None:
    with pytest.raises(InvalidChannelUri):
        validate_channel_uri(uri, HOSTS)
    assert refusal(parse_installation_request, install(channelUri=uri), HOSTS, NOW).field == "channelUri"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (send(payload="hi \ud800"), "payload"),
        (send(type="toast", payload="<toast>\udfff</toast>"), "payload"),
        (send(type=None, payload=None, template="t", properties={"name": "\ud800"}), "properties.name"),
        (send(type=None, payload=None, template="t", properties={"\ud800": "x"}), "properties.\\ud800"),
        (send(target={"installationId": "a\ud800"}), "target.installationId"),
        (send(target={"tag": "\ud800"}), "target.tag"),
        (send(target={"userId": "\ud800"}), "target.userId"),
        (install(userId="\ud800"), "userId"),
        (install(tags=["ok", "\ud800"]), "tags[1]"),
        (install(templates={"t": {"type": "raw", "body": "\ud800"}}), "templates.t.body"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_the_field(body: bytes, field: str) -> None:
    parse = parse_installation_request if b"channelUri" in body else parse_send_request
    args = (body, HOSTS, NOW) if parse is parse_installation_request else (body, NOW)
    refused = refusal(parse, *args)
    assert (refused.status, refused.field) == (400, field)


def test_a_lone_surrogate_in_a_rendered_property_is_a_template_error() -> None:
    with pytest.raises(TemplateError):
        render(Template(NotificationType.RAW, "$(p)"), {"p": "\ud800"})
    with pytest.raises(TemplateError, match="XML cannot carry"):
        render(Template(NotificationType.TOAST, "<toast>$(p)</toast>"), {"p": "a\x01"})


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"type":"raw","payload":NaN,"target":{"installationId":"a"}}', "InvalidJson"),
        (b'{"type":"raw","payload":"x","target":{"installationId":"a"},"options":{"ttl":-Infinity}}', "InvalidJson"),
        (b'{"type":"raw","payload":"x","target":{"installationId":"a"},"options":{"ttl":1e999}}', "InvalidJson"),
        (b'{"type":"raw","payload":"x","target":{"installationId":"a","installationId":"b"}}', "DuplicateField"),
        (b'{"type":"raw","payload":"x","type":"toast","target":{"installationId":"a"}}', "DuplicateField"),
        (b'{"type":"raw","payload":"\xff","target":{"installationId":"a"}}', "InvalidJson"),
        (b'{"type":"raw","payload":"x","options":{"ttl":' + b"9" * 5000 + b"}}", "InvalidJson"),
    ],
)
def test_non_standard_or_ambiguous_json_is_refused(body: bytes, code: str) -> None:
    assert refusal(parse_send_request, body, NOW).code == code


def test_a_duplicate_key_names_its_field() -> None:
    body = b'{"type":"raw","payload":"x","target":{"installationId":"a","installationId":"b"}}'
    assert refusal(parse_send_request, body, NOW).field == "target.installationId"


def test_an_xml_declaration_with_an_unknown_encoding_is_refused() -> None:
    payload = '<?xml version="1.0" encoding="bogus"?><toast/>'
    refused = refusal(parse_send_request, send(type="toast", payload=payload), NOW)
    assert (refused.code, refused.field) == ("InvalidXml", "payload")


@pytest.mark.parametrize("properties", [[], "", 0, False])
def test_properties_must_be_an_object(properties: object) -> None:
    body = send(type=None, payload=None, template="t", properties=properties)
    assert refusal(parse_send_request, body, NOW).field == "properties"
