"""Request validation at its edges: every target and option path, each limit at its exact boundary
(64 KiB, 128, 60, 120, 16, 5,000, TTL, priority, 7 and 30 days, 1,000 ids, templates and
properties as stored), and the status, code and field of each refusal."""

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from pushfuncs.channel_uri import parse_allowed_hosts
from pushfuncs.errors import ApiError
from pushfuncs.storage.installations import templates_to_json
from pushfuncs.validation import (
    MAX_BODY_BYTES,
    MAX_INSTALLATION_IDS,
    MAX_TTL_SECONDS,
    Target,
    parse_installation_request,
    parse_json_object,
    parse_json_value,
    parse_options,
    parse_rfc3339,
    parse_send_request,
    parse_target,
    parse_templates,
    stored_json,
    stored_length,
    validate_id,
    validate_idempotency_key,
    validate_tags,
    validate_xml_payload,
)
from pushfuncs.wns import NotificationType, WnsOptions

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WNS = parse_allowed_hosts(None)
CHANNEL = "https://dm3p.notify.windows.com/?token=abc"
TOAST = "<toast><visual><binding template='ToastGeneric'><text>hi</text></binding></visual></toast>"


def error(call: Callable[[], object]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def refusal(call: Callable[[], object]) -> tuple[int, str, str | None]:
    e = error(call)
    assert e.message  # every refusal says why
    return e.status, e.code, e.field


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def send(**fields: object) -> object:
    fields.setdefault("target", {"installationId": "pc"})
    return parse_send_request(body(**fields), NOW)


# JSON bodies


def test_the_body_limit_is_exact() -> None:
    assert MAX_BODY_BYTES == 65536
    padded = b'{"a": "' + b"x" * (MAX_BODY_BYTES - 10) + b'"}'
    padded = padded + b" " * (MAX_BODY_BYTES - len(padded))
    assert len(padded) == MAX_BODY_BYTES
    assert parse_json_object(padded)["a"]
    assert refusal(lambda: parse_json_object(padded + b" ")) == (413, "BodyTooLarge", None)
    assert refusal(lambda: parse_json_object(b"{}  ", max_bytes=3)) == (413, "BodyTooLarge", None)
    assert parse_json_object(b"{} ", max_bytes=3) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "request body is empty; a JSON object is required"),
        (b" \n", "request body is empty; a JSON object is required"),
        (b"[1]", "request body must be a JSON object"),
        (b'"x"', "request body must be a JSON object"),
        (b'{"a": NaN}', "request body is not valid JSON: NaN is not a JSON number"),
        (b'{"a": -Infinity}', "request body is not valid JSON: -Infinity is not a JSON number"),
        (b'{"a": 1e999}', "request body is not valid JSON: 1e999 is out of range"),
    ],
)
def test_bodies_refused(raw: bytes, message: str) -> None:
    e = error(lambda: parse_json_object(raw))
    assert (e.status, e.code, e.message) == (400, "InvalidJson", message)


def test_invalid_json_says_where() -> None:
    e = error(lambda: parse_json_object(b'{"a": }'))
    assert e.code == "InvalidJson"
    assert e.message.startswith("request body is not valid JSON: Expecting value")


def test_json_values_other_than_objects_are_read() -> None:
    assert parse_json_value(b"[1, 2.5]") == [1, 2.5]
    assert parse_json_value(b"1e308") == 1e308


def test_duplicate_keys_and_surrogates_name_their_field() -> None:
    assert refusal(lambda: parse_json_object(b'{"a": 1, "a": 2}')) == (400, "DuplicateField", "a")
    assert refusal(lambda: parse_json_object(b'{"o": {"k": 1, "k": 1}}')) == (400, "DuplicateField", "o.k")
    assert refusal(lambda: parse_json_object(b'{"o": [{"k": "\\ud800"}]}')) == (400, "InvalidField", "o[0].k")
    e = error(lambda: parse_json_object(b'{"o": {"\\udc00": 1}}'))
    assert (e.field, e.message) == (
        "o.\\udc00",
        "o.\\udc00: the name holds a lone surrogate (\\ud800-\\udfff), not text",
    )
    assert parse_json_object(b'{"a": "\\ud83d\\ude00", "b": [1, {"c": null}]}') == {
        "a": "\U0001f600",
        "b": [1, {"c": None}],
    }


def test_stored_length_counts_utf16_units() -> None:
    assert stored_length("a\U0001f600é") == 4
    assert stored_json({"é": [1, True]}) == '{"\\u00e9":[1,true]}'


# Ids, tags, dates


def test_ids_from_1_to_128_characters() -> None:
    assert validate_id("a", "id") == "a"
    assert validate_id("a" * 128, "id") == "a" * 128
    assert validate_id("0._:@-z", "id") == "0._:@-z"
    for bad in ["", "a" * 129, "-a", ".a", "a/b", "a b", "a#", None, 5]:
        assert refusal(lambda bad=bad: validate_id(bad, "userId")) == (400, "InvalidField", "userId")


def test_tags_60_of_120_characters() -> None:
    assert validate_tags(None) == []
    assert validate_tags([f"t{i}" for i in range(60)]) == sorted(f"t{i}" for i in range(60))
    assert refusal(lambda: validate_tags([f"t{i}" for i in range(61)])) == (400, "InvalidField", "tags")
    assert validate_tags(["b", "a", "b", "x" * 120, "_@.:-"]) == ["_@.:-", "a", "b", "x" * 120]
    assert refusal(lambda: validate_tags(["a", "x" * 121])) == (400, "InvalidField", "tags[1]")
    assert refusal(lambda: validate_tags(["a", ""], "f")) == (400, "InvalidField", "f[1]")
    assert refusal(lambda: validate_tags(["#a"])) == (400, "InvalidField", "tags[0]")
    assert refusal(lambda: validate_tags([1])) == (400, "InvalidField", "tags[0]")
    assert refusal(lambda: validate_tags("a")) == (400, "InvalidField", "tags")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T14:00:00+02:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),
    ],
)
def test_dates(text: str, parsed: datetime) -> None:
    value = parse_rfc3339(text, "at")
    assert value == parsed
    assert value.tzinfo is UTC


@pytest.mark.parametrize("text", [5, None, "yesterday", "2026-01-31T12:00:00", "0001-01-01T00:00:00+01:00"])
def test_bad_dates_name_their_field(text: object) -> None:
    assert refusal(lambda: parse_rfc3339(text, "sendAt")) == (400, "InvalidField", "sendAt")


# Installations


def installation(**fields: object) -> object:
    fields.setdefault("channelUri", CHANNEL)
    return parse_installation_request(body(**fields), WNS, NOW)


def test_an_installation_with_only_a_channel() -> None:
    request = installation()
    assert request.channel_uri == CHANNEL
    assert (request.user_id, request.tags, request.templates) == (None, [], {})
    assert request.expires_at == NOW + timedelta(days=30)


def test_an_installation_with_every_field() -> None:
    request = installation(
        userId="alice", tags=["b", "a"], expiresAt="2026-06-02T12:00:00Z", templates={"t": {"type": "raw", "body": "x"}}
    )
    assert (request.user_id, request.tags) == ("alice", ["a", "b"])
    assert request.expires_at == NOW + timedelta(days=1)
    assert request.templates["t"].body == "x"
    assert installation(expiresAt=None).expires_at == NOW + timedelta(days=30)


def test_installation_refusals() -> None:
    assert refusal(lambda: parse_installation_request(body(), WNS, NOW)) == (400, "MissingField", "channelUri")
    assert refusal(lambda: installation(channelUri="http://x")) == (400, "InvalidChannelUri", "channelUri")
    assert error(lambda: installation(channelUri="http://x")).message == "channelUri: must use https"
    assert refusal(lambda: installation(color="red")) == (400, "UnknownField", "color")
    assert refusal(lambda: installation(userId="a b")) == (400, "InvalidField", "userId")
    assert refusal(lambda: installation(tags=["a b"])) == (400, "InvalidField", "tags[0]")
    assert refusal(lambda: installation(templates=[])) == (400, "InvalidField", "templates")


def test_expiry_boundaries() -> None:
    def at(delta: timedelta) -> str:
        return (NOW + delta).isoformat()

    assert refusal(lambda: installation(expiresAt=at(timedelta(0)))) == (400, "InvalidField", "expiresAt")
    assert installation(expiresAt=at(timedelta(seconds=1))).expires_at == NOW + timedelta(seconds=1)
    latest = NOW + timedelta(days=30)
    # Up to 5 minutes of clock skew past 30 days is forgiven, and clamped to 30 days.
    assert installation(expiresAt=at(timedelta(days=30, minutes=5))).expires_at == latest
    assert installation(expiresAt=at(timedelta(days=30, minutes=1))).expires_at == latest
    assert installation(expiresAt=at(timedelta(days=29))).expires_at == NOW + timedelta(days=29)
    over = timedelta(days=30, minutes=5, seconds=1)
    assert refusal(lambda: installation(expiresAt=at(over))) == (400, "InvalidField", "expiresAt")


# Templates


def test_ten_templates_named_in_64_characters() -> None:
    ten = {f"t{i}": {"type": "raw", "body": "x"} for i in range(10)}
    assert len(parse_templates(ten)) == 10
    assert refusal(lambda: parse_templates(ten | {"t10": {"type": "raw", "body": "x"}})) == (
        400,
        "InvalidField",
        "templates",
    )
    assert parse_templates({"a" * 64: {"type": "raw", "body": "x"}})
    assert parse_templates({"a_.-Z9": {"type": "raw", "body": "x"}})
    for name in ["a" * 65, "", "a b", "a$"]:
        field = f"templates.{name}"
        assert refusal(lambda name=name: parse_templates({name: {"type": "raw", "body": "x"}})) == (
            400,
            "InvalidField",
            field,
        )
    assert parse_templates(None) == {}


def test_each_template_is_checked_like_a_payload() -> None:
    parsed = parse_templates({"g": {"type": "toast", "body": TOAST}})
    assert parsed["g"].notification_type is NotificationType.TOAST
    assert parsed["g"].body == TOAST
    cases = [
        ({"g": "x"}, "InvalidField", "templates.g"),
        ({"g": {"type": "raw", "body": "x", "extra": 1}}, "UnknownField", "templates.g.extra"),
        ({"g": {"type": "mail", "body": "x"}}, "InvalidField", "templates.g.type"),
        ({"g": {"body": "x"}}, "InvalidField", "templates.g.type"),
        ({"g": {"type": "raw", "body": ""}}, "InvalidField", "templates.g.body"),
        ({"g": {"type": "raw"}}, "InvalidField", "templates.g.body"),
        ({"g": {"type": "raw", "body": 5}}, "InvalidField", "templates.g.body"),
        ({"g": {"type": "raw", "body": "\ud800"}}, "InvalidField", "templates.g.body"),
        ({"g": {"type": "tile", "body": TOAST}}, "InvalidXml", "templates.g.body"),
        ({"g": {"type": "toast", "body": "<toast>"}}, "InvalidXml", "templates.g.body"),
    ]
    for spec, code, field in cases:
        assert refusal(lambda spec=spec: parse_templates(spec)) == (400, code, field), spec
    e = error(lambda: parse_templates({"g": {"type": "tile", "body": TOAST}}))
    assert e.message == "templates.g.body: a tile notification's root element must be <tile>, not <toast>"


def test_a_template_body_of_5000_bytes_exactly() -> None:
    assert parse_templates({"g": {"type": "raw", "body": "x" * 5000}})
    assert refusal(lambda: parse_templates({"g": {"type": "raw", "body": "x" * 5001}})) == (
        400,
        "InvalidField",
        "templates.g.body",
    )
    assert refusal(lambda: parse_templates({"g": {"type": "raw", "body": "é" * 2501}}))[2] == "templates.g.body"


def test_templates_together_take_30000_characters_as_stored() -> None:
    # Find the body length that puts the stored form at exactly the limit.
    names = [f"t{i}" for i in range(8)]

    def templates(extra: int) -> dict[str, object]:
        specs = {n: {"type": "raw", "body": "x" * 4000} for n in names[:-1]}
        specs[names[-1]] = {"type": "raw", "body": "x" * extra}
        return specs

    base = stored_length(templates_to_json(parse_templates(templates(1)))) - 1
    fits = 30_000 - base
    assert 0 < fits <= 5000
    assert len(parse_templates(templates(fits))) == 8
    e = error(lambda: parse_templates(templates(fits + 1)))
    assert (e.field, e.message) == (
        "templates",
        "templates: together take 30001 characters as stored (JSON, non-ASCII escaped); at most 30000",
    )


# Options


@pytest.mark.parametrize(
    ("options", "parsed"),
    [
        (None, WnsOptions()),
        ({}, WnsOptions()),
        ({"X-WNS-Cache-Policy": "Cache"}, WnsOptions(cache_policy="cache")),
        ({"cachePolicy": "NO-CACHE"}, WnsOptions(cache_policy="no-cache")),
        ({"X-WNS-TTL": 1}, WnsOptions(ttl=1)),
        ({"ttl": MAX_TTL_SECONDS}, WnsOptions(ttl=2147483647)),
        ({"x-wns-ttl": "60"}, WnsOptions(ttl=60)),
        ({"X-WNS-Tag": "a" * 16}, WnsOptions(tag="a" * 16)),
        ({"tag": "Z9"}, WnsOptions(tag="Z9")),
        ({"X-WNS-Group": "g" * 16}, WnsOptions(group="g" * 16)),
        ({"group": "1"}, WnsOptions(group="1")),
        ({"X-WNS-RequestForStatus": True}, WnsOptions(request_for_status=True)),
        ({"requestForStatus": False}, WnsOptions(request_for_status=False)),
        ({"X-WNS-RequestForStatus": "true"}, WnsOptions(request_for_status=True)),
        ({"X-WNS-RequestForStatus": "TRUE"}, WnsOptions(request_for_status=True)),
        ({"X-WNS-RequestForStatus": "false"}, WnsOptions(request_for_status=False)),
        ({"X-WNS-RequestForStatus": "False"}, WnsOptions(request_for_status=False)),
        ({"X-WNS-PRIORITY": 1}, WnsOptions(priority=1)),
        ({"priority": 4}, WnsOptions(priority=4)),
        ({"Priority": "2"}, WnsOptions(priority=2)),
        ({"X-WNS-TTL": None, "tag": None}, WnsOptions()),
    ],
)
def test_every_option(options: object, parsed: WnsOptions) -> None:
    assert parse_options(options) == parsed


@pytest.mark.parametrize(
    ("options", "code", "field"),
    [
        ([], "InvalidField", "options"),
        ({"X-WNS-Cache-Policy": "always"}, "InvalidField", "options.X-WNS-Cache-Policy"),
        ({"cachePolicy": 1}, "InvalidField", "options.cachePolicy"),
        ({"X-WNS-TTL": 0}, "InvalidField", "options.X-WNS-TTL"),
        ({"X-WNS-TTL": MAX_TTL_SECONDS + 1}, "InvalidField", "options.X-WNS-TTL"),
        ({"X-WNS-TTL": True}, "InvalidField", "options.X-WNS-TTL"),
        ({"X-WNS-TTL": 1.5}, "InvalidField", "options.X-WNS-TTL"),
        ({"X-WNS-TTL": "-1"}, "InvalidField", "options.X-WNS-TTL"),
        ({"X-WNS-TTL": "12345678901"}, "InvalidField", "options.X-WNS-TTL"),
        ({"X-WNS-Tag": "a" * 17}, "InvalidField", "options.X-WNS-Tag"),
        ({"X-WNS-Tag": ""}, "InvalidField", "options.X-WNS-Tag"),
        ({"X-WNS-Tag": "a-b"}, "InvalidField", "options.X-WNS-Tag"),
        ({"X-WNS-Tag": 5}, "InvalidField", "options.X-WNS-Tag"),
        ({"X-WNS-Group": "g" * 17}, "InvalidField", "options.X-WNS-Group"),
        ({"X-WNS-RequestForStatus": "yes"}, "InvalidField", "options.X-WNS-RequestForStatus"),
        ({"X-WNS-RequestForStatus": 1}, "InvalidField", "options.X-WNS-RequestForStatus"),
        ({"X-WNS-PRIORITY": 0}, "InvalidField", "options.X-WNS-PRIORITY"),
        ({"X-WNS-PRIORITY": 5}, "InvalidField", "options.X-WNS-PRIORITY"),
        ({"X-WNS-PRIORITY": False}, "InvalidField", "options.X-WNS-PRIORITY"),
        ({"X-WNS-SuppressPopup": True}, "UnsupportedOption", "options.X-WNS-SuppressPopup"),
        ({"suppressPopup": True}, "UnsupportedOption", "options.suppressPopup"),
        ({"X-WNS-Match": "x"}, "UnsupportedOption", "options.X-WNS-Match"),
        ({"X-WNS-Other": 1}, "UnknownField", "options.X-WNS-Other"),
        ({"ttl": 5, "X-WNS-TTL": 6}, "InvalidField", "options.X-WNS-TTL"),
        ({"tag": "a", "TAG": "b"}, "InvalidField", "options.TAG"),
    ],
)
def test_each_option_refusal(options: object, code: str, field: str) -> None:
    assert refusal(lambda: parse_options(options)) == (400, code, field)


def test_option_messages_give_the_range() -> None:
    assert error(lambda: parse_options({"ttl": 0})).message == "options.ttl: must be an integer from 1 to 2147483647"
    assert error(lambda: parse_options({"priority": 9})).message == "options.priority: must be an integer from 1 to 4"
    assert error(lambda: parse_options({"tag": "-"})).message == (
        "options.tag: must be 1-16 alphanumeric characters (A-Z, a-z, 0-9)"
    )


# Targets


@pytest.mark.parametrize(
    ("target", "parsed", "stored"),
    [
        ({"installationId": "pc"}, Target(installation_id="pc"), {"installationId": "pc"}),
        ({"userId": "alice"}, Target(user_id="alice"), {"userId": "alice"}),
        ({"tag": "x" * 120}, Target(tag="x" * 120), {"tag": "x" * 120}),
        ({"tagExpression": "  a && b "}, Target(tag_expression="a && b"), {"tagExpression": "a && b"}),
        ({"installationIds": ["b", "a", "b"]}, Target(installation_ids=("a", "b")), {"installationIds": ["a", "b"]}),
        ({"all": True}, Target(broadcast=True), {"all": True}),
    ],
)
def test_every_target(target: dict[str, object], parsed: Target, stored: dict[str, object]) -> None:
    assert parse_target(target) == parsed
    assert parsed.to_dict() == stored
    assert parse_target(stored) == parsed


@pytest.mark.parametrize(
    ("target", "code", "field"),
    [
        (None, "MissingField", "target"),
        ("pc", "MissingField", "target"),
        ({}, "MissingField", "target"),
        ({"installationId": "pc", "all": True}, "MissingField", "target"),
        ({"installationId": "pc", "userId": "u"}, "MissingField", "target"),
        ({"device": "pc"}, "UnknownField", "target.device"),
        ({"all": False}, "InvalidField", "target.all"),
        ({"all": "yes"}, "InvalidField", "target.all"),
        ({"all": 1}, "InvalidField", "target.all"),
        ({"installationId": "a b"}, "InvalidField", "target.installationId"),
        ({"userId": ""}, "InvalidField", "target.userId"),
        ({"tag": "x" * 121}, "InvalidField", "target.tag"),
        ({"tag": 5}, "InvalidField", "target.tag"),
        ({"tag": "a b"}, "InvalidField", "target.tag"),
        ({"tagExpression": "a ||"}, "InvalidTagExpression", "target.tagExpression"),
        ({"tagExpression": "!a"}, "InvalidTagExpression", "target.tagExpression"),
        ({"tagExpression": 5}, "InvalidTagExpression", "target.tagExpression"),
        ({"installationIds": []}, "InvalidField", "target.installationIds"),
        ({"installationIds": "pc"}, "InvalidField", "target.installationIds"),
        ({"installationIds": ["pc", "a b"]}, "InvalidField", "target.installationIds[1]"),
    ],
)
def test_each_target_refusal(target: object, code: str, field: str) -> None:
    assert refusal(lambda: parse_target(target)) == (400, code, field)


def test_a_tag_expression_error_says_why() -> None:
    e = error(lambda: parse_target({"tagExpression": "(a"}))
    assert e.message == "target.tagExpression: expression ends too early"


def test_up_to_1000_installation_ids() -> None:
    ids = [f"i{n}" for n in range(MAX_INSTALLATION_IDS + 1)]
    assert len(parse_target({"installationIds": ids[:1000]}).installation_ids) == 1000
    assert refusal(lambda: parse_target({"installationIds": ids})) == (400, "InvalidField", "target.installationIds")


# Idempotency keys


def test_idempotency_keys_of_1_to_255_printable_characters() -> None:
    assert validate_idempotency_key(None) is None
    assert validate_idempotency_key("k") == "k"
    assert validate_idempotency_key("k" * 255) == "k" * 255
    for bad in ["", "k" * 256, "a\nb", "\x00", "\ud800"]:
        assert refusal(lambda bad=bad: validate_idempotency_key(bad)) == (400, "InvalidField", "Idempotency-Key")


# XML


def test_xml_payload_rules() -> None:
    validate_xml_payload(b"<badge value='1'/>", NotificationType.BADGE)
    assert refusal(lambda: validate_xml_payload(b"<tile/>", NotificationType.BADGE)) == (400, "InvalidXml", "payload")
    assert refusal(lambda: validate_xml_payload(b"<toast>", NotificationType.TOAST)) == (400, "InvalidXml", "payload")
    dtd = b'<!DOCTYPE toast [<!ENTITY e "x">]><toast>&e;</toast>'
    assert refusal(lambda: validate_xml_payload(dtd, NotificationType.TOAST)) == (400, "InvalidXml", "payload")
    unknown = b'<?xml version="1.0" encoding="nope"?><toast/>'
    assert refusal(lambda: validate_xml_payload(unknown, NotificationType.TOAST)) == (400, "InvalidXml", "payload")


# Sends


def test_a_toast_send() -> None:
    request = send(type="toast", payload=TOAST, options={"ttl": 60})
    assert request.notification_type is NotificationType.TOAST
    assert request.payload == TOAST.encode()
    assert request.target == Target(installation_id="pc")
    assert request.options == WnsOptions(ttl=60)
    assert (request.send_at, request.template, request.properties) == (None, None, {})


def test_raw_payloads_as_text_or_base64() -> None:
    assert send(type="raw", payload="é").payload == "é".encode()
    assert send(type="raw", payloadBase64=base64.b64encode(b"\x00\xff").decode()).payload == b"\x00\xff"
    assert len(send(type="raw", payload="x" * 5000).payload) == 5000
    assert len(send(type="raw", payloadBase64=base64.b64encode(b"x" * 5000).decode()).payload) == 5000


@pytest.mark.parametrize(
    ("fields", "status", "code", "field"),
    [
        ({"type": "raw", "payload": "x" * 5001}, 400, "PayloadTooLarge", "payload"),
        ({"type": "raw", "payload": "é" * 2501}, 400, "PayloadTooLarge", "payload"),
        (
            {"type": "raw", "payloadBase64": base64.b64encode(b"x" * 5001).decode()},
            400,
            "PayloadTooLarge",
            "payloadBase64",
        ),
        ({"type": "raw", "payload": ""}, 400, "InvalidField", "payload"),
        ({"type": "raw", "payloadBase64": ""}, 400, "InvalidField", "payloadBase64"),
        ({"type": "raw", "payload": "a", "payloadBase64": "YQ=="}, 400, "InvalidField", "payloadBase64"),
        ({"type": "toast", "payloadBase64": "YQ=="}, 400, "InvalidField", "payloadBase64"),
        ({"type": "raw", "payloadBase64": 5}, 400, "InvalidField", "payloadBase64"),
        ({"type": "raw", "payloadBase64": "not base64!"}, 400, "InvalidField", "payloadBase64"),
        ({"type": "raw"}, 400, "MissingField", "payload"),
        ({"type": "raw", "payload": 5}, 400, "MissingField", "payload"),
        ({"type": "raw", "payload": "\ud800"}, 400, "InvalidField", "payload"),
        ({"type": "toast", "payload": "<tile/>"}, 400, "InvalidXml", "payload"),
        ({"type": "mail", "payload": "x"}, 400, "InvalidField", "type"),
        ({"payload": "x"}, 400, "InvalidField", "type"),
        ({"type": "raw", "payload": "x", "properties": {}}, 400, "InvalidField", "properties"),
        ({"type": "raw", "payload": "x", "colour": 1}, 400, "UnknownField", "colour"),
        ({"type": "raw", "payload": "x", "target": {"all": False}}, 400, "InvalidField", "target.all"),
        ({"type": "raw", "payload": "x", "options": {"ttl": 0}}, 400, "InvalidField", "options.ttl"),
    ],
)
def test_send_refusals(fields: dict[str, object], status: int, code: str, field: str) -> None:
    assert refusal(lambda: send(**fields)) == (status, code, field)


def test_a_send_without_a_target_is_refused() -> None:
    raw = body(type="raw", payload="x")
    assert refusal(lambda: parse_send_request(raw, NOW)) == (400, "MissingField", "target")


def test_send_at_up_to_7_days_ahead_and_past_times_are_now() -> None:
    def at(delta: timedelta) -> object:
        return send(type="raw", payload="x", sendAt=(NOW + delta).isoformat()).send_at

    assert at(timedelta(days=7)) == NOW + timedelta(days=7)
    assert at(timedelta(seconds=1)) == NOW + timedelta(seconds=1)
    assert at(timedelta(0)) is None
    assert at(timedelta(days=-1)) is None
    assert send(type="raw", payload="x", sendAt=None).send_at is None
    seven_days_and_a_second = (NOW + timedelta(days=7, seconds=1)).isoformat()
    assert refusal(lambda: send(type="raw", payload="x", sendAt=seven_days_and_a_second)) == (
        400,
        "InvalidField",
        "sendAt",
    )
    assert refusal(lambda: send(type="raw", payload="x", sendAt="soon")) == (400, "InvalidField", "sendAt")


def test_now_defaults_to_the_clock() -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    request = parse_send_request(body(type="raw", payload="x", target={"all": True}, sendAt=soon))
    assert request.send_at is not None
    far = (datetime.now(UTC) + timedelta(days=8)).isoformat()
    assert refusal(lambda: parse_send_request(body(type="raw", payload="x", target={"all": True}, sendAt=far)))[2] == (
        "sendAt"
    )


# Template sends


def test_a_template_send() -> None:
    request = send(template="greeting", properties={"name": "Ada", "n": 3, "x": 1.5, "ok": True, "no": False})
    assert request.template == "greeting"
    assert request.properties == {"name": "Ada", "n": "3", "x": "1.5", "ok": "true", "no": "false"}
    assert request.payload == b""
    assert request.notification_type is NotificationType.TOAST
    assert send(template="g").properties == {}
    assert send(template="g", properties=None).properties == {}
    assert send(template="g", options={"tag": "a"}, target={"tag": "t"}).target == Target(tag="t")
    later = send(template="g", sendAt=(NOW + timedelta(hours=1)).isoformat())
    assert later.send_at == NOW + timedelta(hours=1)
    assert later.options == WnsOptions()


def test_the_incoming_call_template_is_rendered_once_at_send() -> None:
    request = send(template="incomingCall", properties={"callerName": "Ada", "callId": "42", "callType": "video"})
    assert request.template is None
    assert request.notification_type is NotificationType.TOAST
    assert b"Incoming video call" in request.payload
    assert b"<text>Ada</text>" in request.payload
    e = error(lambda: send(template="incomingCall", properties={"callerName": "Ada"}))
    assert (e.field, e.message) == ("properties", "properties: the incomingCall template needs the property callId")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"template": 5}, "template"),
        ({"template": ""}, "template"),
        ({"template": "a" * 65}, "template"),
        ({"template": "a b"}, "template"),
        ({"template": "g", "type": "raw"}, "type"),
        ({"template": "g", "payload": "x"}, "payload"),
        ({"template": "g", "payloadBase64": "YQ=="}, "payloadBase64"),
        ({"template": "g", "properties": []}, "properties"),
        ({"template": "g", "properties": {"a": None}}, "properties.a"),
        ({"template": "g", "properties": {"a": [1]}}, "properties.a"),
        ({"template": "g", "properties": {"a": "\ud800"}}, "properties.a"),
        ({"template": "g", "properties": {"\ud800": "a"}}, "properties.\ud800"),
    ],
)
def test_template_send_refusals(fields: dict[str, object], field: str) -> None:
    e = error(lambda: parse_send_request(json.dumps({"target": {"all": True}} | fields).encode(), NOW))
    assert (e.status, e.code) == (400, "InvalidField")
    if "\ud800" not in field:
        assert e.field == field


def test_a_template_name_of_64_characters() -> None:
    assert send(template="a" * 64).template == "a" * 64


def test_properties_take_8000_characters_as_stored() -> None:
    # {"p":"..."} is 8 characters around the value.
    assert send(template="g", properties={"p": "x" * 7992}).properties["p"] == "x" * 7992
    e = error(lambda: send(template="g", properties={"p": "x" * 7993}))
    assert (e.field, e.message) == (
        "properties",
        "properties: together take 8001 characters as stored (JSON, non-ASCII escaped); at most 8000",
    )
    # Non-ASCII counts as its \\uXXXX escape: 6 characters each.
    assert send(template="g", properties={"p": "é" * 1332}).properties
    assert refusal(lambda: send(template="g", properties={"p": "é" * 1333}))[2] == "properties"


def test_a_dtd_alone_is_refused() -> None:
    e = error(lambda: validate_xml_payload(b"<!DOCTYPE toast><toast/>", NotificationType.TOAST))
    assert (e.code, e.field) == ("InvalidXml", "payload")
    assert e.message == "payload: XML with DTDs or entities is refused (DTDForbidden)"


def test_base64_with_characters_outside_its_alphabet_is_refused() -> None:
    for encoded in ["YQ==!", "Y Q==", "YQ==\n"]:
        assert refusal(lambda encoded=encoded: send(type="raw", payloadBase64=encoded)) == (
            400,
            "InvalidField",
            "payloadBase64",
        )


def test_a_null_option_is_skipped_and_the_next_still_read() -> None:
    assert parse_options({"ttl": None, "tag": "a", "priority": 2}) == WnsOptions(tag="a", priority=2)
