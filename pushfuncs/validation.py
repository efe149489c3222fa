"""Parse and validate API request bodies into typed values (pure; no I/O)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml_safely

from pushfuncs.channel_uri import HostPattern, InvalidChannelUri, validate_channel_uri
from pushfuncs.errors import ApiError, InvalidField
from pushfuncs.storage.installations import templates_to_json
from pushfuncs.tag_expression import InvalidTagExpression, parse_tag_expression
from pushfuncs.templates import (
    INCOMING_CALL,
    INCOMING_CALL_TEMPLATE,
    Template,
    TemplateError,
    incoming_call_properties,
    render,
)
from pushfuncs.wns import MAX_PAYLOAD_BYTES, MAX_TAG_LENGTH, NotificationType, WnsOptions

MAX_BODY_BYTES = 64 * 1024
CHANNEL_LIFETIME = timedelta(days=30)
# Clock skew we forgive between a device computing its channel's expiry and us.
EXPIRY_SKEW = timedelta(minutes=5)
MAX_TAGS = 60

# Table Storage counts a string property in UTF-16 code units: at most 32K of them (64 KiB).
MAX_STORED_STRING_CHARS = 32 * 1024

# Patterns are used with fullmatch only: `$` would also match before a final newline.
# Ids become Table Storage keys: no '/', '\\', '#', '?', control characters or spaces.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
# Notification Hubs' tag alphabet and length, less '#': Table Storage refuses it in the tag index's keys.
_TAG = re.compile(r"[A-Za-z0-9_@.:-]{1,120}")
_ALPHANUMERIC = re.compile(rf"[A-Za-z0-9]{{1,{MAX_TAG_LENGTH}}}")
# JSON's \\ud800 escapes decode to lone surrogates: no UTF-8 payload or stored property holds one.
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_TEXT = "holds a lone surrogate (\\ud800-\\udfff), not text"


def stored_length(text: str) -> int:
    """The length Table Storage counts for a string property: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def stored_json(value: object) -> str:
    """`value` as we store it in a property or queue message: compact JSON, non-ASCII escaped."""
    return json.dumps(value, separators=(",", ":"))


class _DuplicateKeys(dict[str, object]):
    """A JSON object that named `duplicate` twice (the last value would silently win)."""

    duplicate: str = ""


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    flagged = _DuplicateKeys(result)
    flagged.duplicate = next(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
    return flagged


def _refuse_constant(name: str) -> float:
    raise ApiError(400, "InvalidJson", f"request body is not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ApiError(400, "InvalidJson", f"request body is not valid JSON: {text[:40]} is out of range")
    return value


def _field_name(path: str, key: str) -> str:
    # A key with a lone surrogate cannot be shown as it is; its escaped form can.
    shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"{path}.{shown}" if path else shown


def _check_json_text(value: object) -> None:
    """Refuse duplicate keys and lone surrogates (no stored form or WNS payload can carry
    them), naming the field. Iterative: the nesting depth is the client's."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item, _DuplicateKeys):
                raise InvalidField(_field_name(path, item.duplicate), "is given twice", "DuplicateField")
            for key, child in item.items():
                name = _field_name(path, key)
                if _SURROGATE.search(key):
                    raise InvalidField(name, f"the name {_NOT_TEXT}")
                stack.append((name, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
        elif isinstance(item, str) and _SURROGATE.search(item):
            raise InvalidField(path, _NOT_TEXT)


def parse_json_object(body: bytes, max_bytes: int = MAX_BODY_BYTES) -> dict[str, object]:
    """The request body as a JSON object, or a 4xx that says what is wrong with it."""
    value = parse_json_value(body, max_bytes)
    if not isinstance(value, dict):
        raise ApiError(400, "InvalidJson", "request body must be a JSON object")
    return value


def parse_json_value(body: bytes, max_bytes: int = MAX_BODY_BYTES) -> object:
    """The request body as any JSON value (a JSON Patch is an array), with the same checks as
    `parse_json_object`: size, duplicate keys, lone surrogates, NaN and overflow refused."""
    if len(body) > max_bytes:
        raise ApiError(413, "BodyTooLarge", f"request body is larger than {max_bytes} bytes")
    if not body.strip():
        raise ApiError(400, "InvalidJson", "request body is empty; a JSON object is required")
    try:
        value = json.loads(
            body,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except (ValueError, RecursionError) as error:
        raise ApiError(400, "InvalidJson", f"request body is not valid JSON: {error}") from error
    _check_json_text(value)
    return value


def _reject_unknown(body: dict[str, object], allowed: set[str], prefix: str = "") -> None:
    for key in body:
        if key not in allowed:
            raise InvalidField(f"{prefix}{key}", f"unknown field; expected one of {sorted(allowed)}", "UnknownField")


def validate_id(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidField(
            field_name, "must be 1-128 characters of letters, digits and . _ : @ - (starting with a letter or digit)"
        )
    return value


def _optional_string_id(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    return None if value is None else validate_id(value, key)


def validate_tags(value: object, field_name: str = "tags") -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidField(field_name, "must be a list of strings")
    if len(value) > MAX_TAGS:
        raise InvalidField(field_name, f"at most {MAX_TAGS} tags per installation")
    for index, tag in enumerate(value):
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise InvalidField(f"{field_name}[{index}]", "must be 1-120 characters of letters, digits and _ @ . : -")
    return sorted(set(value))


def parse_rfc3339(value: object, field_name: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidField(field_name, "must be an RFC 3339 date-time string")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidField(field_name, "must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z") from error
    if parsed.tzinfo is None:
        raise InvalidField(field_name, "must carry a time zone offset (e.g. Z)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as error:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise InvalidField(field_name, "is outside the years 1-9999 in UTC") from error


@dataclass(frozen=True)
class InstallationRequest:
    channel_uri: str
    user_id: str | None
    tags: list[str]
    expires_at: datetime
    templates: dict[str, Template] = field(default_factory=dict)


MAX_TEMPLATES = 10
# All templates together, as stored (`templates_to_json`: non-ASCII as \\uXXXX, escaped quotes and
# backslashes): one string property of the registry entity and of each of its index rows.
MAX_TEMPLATES_CHARS = 30_000
_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def parse_templates(value: object) -> dict[str, Template]:
    """`templates`: {name: {"type": ..., "body": "...$(property)..."}}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidField("templates", 'must be an object: {"name": {"type": "toast", "body": "..."}}')
    if len(value) > MAX_TEMPLATES:
        raise InvalidField("templates", f"at most {MAX_TEMPLATES} templates per installation")
    templates: dict[str, Template] = {}
    for name, spec in value.items():
        prefix = f"templates.{name}"
        if not _TEMPLATE_NAME.fullmatch(name):
            raise InvalidField(prefix, "template names are 1-64 characters of letters, digits and _ . -")
        if not isinstance(spec, dict):
            raise InvalidField(prefix, 'must be an object with "type" and "body"')
        _reject_unknown(spec, {"type", "body"}, f"{prefix}.")
        try:
            kind = NotificationType(spec.get("type"))
        except ValueError as error:
            raise InvalidField(f"{prefix}.type", 'must be one of "toast", "tile", "badge", "raw"') from error
        body = spec.get("body")
        if not isinstance(body, str) or not body:
            raise InvalidField(f"{prefix}.body", "must be a non-empty string")
        encoded = _utf8(body, f"{prefix}.body")
        if len(encoded) > MAX_PAYLOAD_BYTES:
            raise InvalidField(f"{prefix}.body", f"is larger than WNS's {MAX_PAYLOAD_BYTES} bytes")
        if kind.is_xml:
            try:
                validate_xml_payload(encoded, kind)
            except ApiError as error:
                raise InvalidField(f"{prefix}.body", error.message.removeprefix("payload: "), "InvalidXml") from error
        templates[name] = Template(kind, body)
    stored = stored_length(templates_to_json(templates))
    if stored > MAX_TEMPLATES_CHARS:
        raise InvalidField(
            "templates",
            f"together take {stored} characters as stored (JSON, non-ASCII escaped); at most {MAX_TEMPLATES_CHARS}",
        )
    return templates


def _utf8(text: str, field_name: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidField(field_name, _NOT_TEXT) from error


def parse_installation_request(
    body: bytes, allowed_hosts: tuple[HostPattern, ...], now: datetime
) -> InstallationRequest:
    data = parse_json_object(body)
    _reject_unknown(data, {"channelUri", "userId", "tags", "expiresAt", "templates"})
    if "channelUri" not in data:
        raise InvalidField("channelUri", "is required", "MissingField")
    try:
        channel_uri = validate_channel_uri(data["channelUri"], allowed_hosts)
    except InvalidChannelUri as error:
        raise InvalidField("channelUri", str(error), "InvalidChannelUri") from error
    latest = now + CHANNEL_LIFETIME
    if data.get("expiresAt") is None:
        expires_at = latest
    else:
        expires_at = parse_rfc3339(data["expiresAt"], "expiresAt")
        if expires_at <= now:
            raise InvalidField("expiresAt", "is in the past; the channel has expired")
        if expires_at > latest + EXPIRY_SKEW:
            raise InvalidField("expiresAt", "may be at most 30 days from now (WNS channels live 30 days)")
        expires_at = min(expires_at, latest)
    return InstallationRequest(
        channel_uri=channel_uri,
        user_id=_optional_string_id(data, "userId"),
        tags=validate_tags(data.get("tags")),
        expires_at=expires_at,
        templates=parse_templates(data.get("templates")),
    )


# Option names: the WNS header name (canonical) or a camelCase alias, case-insensitive.
_OPTION_FIELDS = {
    "x-wns-cache-policy": "cache_policy",
    "cachepolicy": "cache_policy",
    "x-wns-ttl": "ttl",
    "ttl": "ttl",
    "x-wns-tag": "tag",
    "tag": "tag",
    "x-wns-group": "group",
    "group": "group",
    "x-wns-requestforstatus": "request_for_status",
    "requestforstatus": "request_for_status",
    "x-wns-priority": "priority",
    "priority": "priority",
}
_REFUSED_OPTIONS = {
    "x-wns-suppresspopup": "is Windows Phone only: on a Windows channel WNS drops the notification",
    "suppresspopup": "is Windows Phone only: on a Windows channel WNS drops the notification",
    "x-wns-match": "is only valid with DELETE requests on Windows Phone",
}
MAX_TTL_SECONDS = 2**31 - 1


def _as_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise InvalidField(name, f"must be an integer from {low} to {high}")
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}", value):
        value = int(value)
    if not isinstance(value, int) or not low <= value <= high:
        raise InvalidField(name, f"must be an integer from {low} to {high}")
    return value


def parse_options(value: object) -> WnsOptions:
    """`options` of a send request: every optional WNS request header, validated."""
    if value is None:
        return WnsOptions()
    if not isinstance(value, dict):
        raise InvalidField("options", "must be an object of WNS header names to values")
    fields: dict[str, object] = {}
    for key, raw in value.items():
        name = f"options.{key}"
        lowered = key.lower()
        if lowered in _REFUSED_OPTIONS:
            raise InvalidField(name, _REFUSED_OPTIONS[lowered], "UnsupportedOption")
        if lowered not in _OPTION_FIELDS:
            raise InvalidField(
                name,
                "unknown option; expected X-WNS-Cache-Policy, X-WNS-TTL, X-WNS-Tag, X-WNS-Group,"
                " X-WNS-RequestForStatus or X-WNS-PRIORITY",
                "UnknownField",
            )
        target = _OPTION_FIELDS[lowered]
        if target in fields:
            raise InvalidField(name, "is given twice")
        if raw is None:
            continue
        if target == "cache_policy":
            if not isinstance(raw, str) or raw.lower() not in ("cache", "no-cache"):
                raise InvalidField(name, 'must be "cache" or "no-cache"')
            fields[target] = raw.lower()
        elif target == "ttl":
            fields[target] = _as_int(raw, name, 1, MAX_TTL_SECONDS)
        elif target in ("tag", "group"):
            if not isinstance(raw, str) or not _ALPHANUMERIC.fullmatch(raw):
                raise InvalidField(name, f"must be 1-{MAX_TAG_LENGTH} alphanumeric characters (A-Z, a-z, 0-9)")
            fields[target] = raw
        elif target == "request_for_status":
            if isinstance(raw, str) and raw.lower() in ("true", "false"):
                raw = raw.lower() == "true"
            if not isinstance(raw, bool):
                raise InvalidField(name, "must be true or false")
            fields[target] = raw
        elif target == "priority":
            fields[target] = _as_int(raw, name, 1, 4)
    return WnsOptions(**fields)  # type: ignore[arg-type]


def validate_xml_payload(payload: bytes, notification_type: NotificationType) -> None:
    """Well-formed XML whose root matches the type (WNS drops a mismatch silently on the device)."""
    try:
        root = parse_xml_safely(payload, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise InvalidField(
            "payload", f"XML with DTDs or entities is refused ({type(error).__name__})", "InvalidXml"
        ) from error
    except (ParseError, LookupError, ValueError) as error:  # LookupError: an unknown declared encoding
        raise InvalidField("payload", f"is not well-formed XML: {error}", "InvalidXml") from error
    if root.tag != notification_type.value:
        raise InvalidField(
            "payload",
            f"a {notification_type.value} notification's root element must be"
            f" <{notification_type.value}>, not <{root.tag}>",
            "InvalidXml",
        )


@dataclass(frozen=True)
class Target:
    """Who a notification goes to. Exactly one of the fields is set."""

    installation_id: str | None = None
    user_id: str | None = None
    tag: str | None = None
    tag_expression: str | None = None
    installation_ids: tuple[str, ...] = field(default_factory=tuple)
    broadcast: bool = False

    def to_dict(self) -> dict[str, object]:
        if self.broadcast:
            return {"all": True}
        if self.installation_id is not None:
            return {"installationId": self.installation_id}
        if self.user_id is not None:
            return {"userId": self.user_id}
        if self.tag is not None:
            return {"tag": self.tag}
        if self.tag_expression is not None:
            return {"tagExpression": self.tag_expression}
        return {"installationIds": list(self.installation_ids)}


MAX_INSTALLATION_IDS = 1000
_TARGET_KEYS = ("installationId", "installationIds", "userId", "tag", "tagExpression", "all")


def parse_target(value: object) -> Target:
    """Exactly one of installationId, installationIds, userId, tag, tagExpression or all (broadcast)."""
    if not isinstance(value, dict):
        raise InvalidField("target", 'must be an object such as {"installationId": "..."}', "MissingField")
    _reject_unknown(value, set(_TARGET_KEYS), "target.")
    given = [key for key in _TARGET_KEYS if key in value]
    if len(given) != 1:
        raise InvalidField("target", f"give exactly one of {', '.join(_TARGET_KEYS)}", "MissingField")
    key = given[0]
    raw = value[key]
    name = f"target.{key}"
    if key == "installationId":
        return Target(installation_id=validate_id(raw, name))
    if key == "all":
        if raw is not True:
            raise InvalidField(name, "must be true (a broadcast to every live installation)")
        return Target(broadcast=True)
    if key == "userId":
        return Target(user_id=validate_id(raw, name))
    if key == "tag":
        if not isinstance(raw, str) or not _TAG.fullmatch(raw):
            raise InvalidField(name, "must be 1-120 characters of letters, digits and _ @ . : -")
        return Target(tag=raw)
    if key == "tagExpression":
        try:
            parse_tag_expression(raw)  # type: ignore[arg-type]
        except InvalidTagExpression as error:
            raise InvalidField(name, str(error), "InvalidTagExpression") from error
        return Target(tag_expression=raw.strip())  # type: ignore[union-attr]
    if not isinstance(raw, list) or not raw:
        raise InvalidField(name, "must be a non-empty list of installation ids")
    if len(raw) > MAX_INSTALLATION_IDS:
        raise InvalidField(name, f"at most {MAX_INSTALLATION_IDS} installation ids per request")
    ids = [validate_id(item, f"{name}[{i}]") for i, item in enumerate(raw)]
    return Target(installation_ids=tuple(sorted(set(ids))))


MAX_SCHEDULE_AHEAD = timedelta(days=7)
MAX_IDEMPOTENCY_KEY_CHARS = 255


def validate_idempotency_key(value: str | None) -> str | None:
    """The `Idempotency-Key` header: absent, or 1-255 printable characters (never a lone surrogate)."""
    if value is not None and not (0 < len(value) <= MAX_IDEMPOTENCY_KEY_CHARS and value.isprintable()):
        raise InvalidField("Idempotency-Key", f"must be 1-{MAX_IDEMPOTENCY_KEY_CHARS} printable characters")
    return value


@dataclass(frozen=True)
class SendRequest:
    notification_type: NotificationType
    payload: bytes
    target: Target
    options: WnsOptions
    send_at: datetime | None = None
    # A template send: each device gets `template` rendered with `properties`.
    template: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


def parse_send_request(body: bytes, now: datetime | None = None) -> SendRequest:
    data = parse_json_object(body)
    _reject_unknown(data, {"type", "payload", "payloadBase64", "target", "options", "sendAt", "template", "properties"})
    now = now or datetime.now(UTC)
    send_at = None
    if data.get("sendAt") is not None:
        send_at = parse_rfc3339(data["sendAt"], "sendAt")
        if send_at > now + MAX_SCHEDULE_AHEAD:
            raise InvalidField("sendAt", "may be at most 7 days ahead (the queue's longest delay)")
        if send_at <= now:
            send_at = None
    target = parse_target(data.get("target"))
    options = parse_options(data.get("options"))
    if "template" in data:
        return _parse_template_send(data, target, options, send_at)
    raw_type = data.get("type")
    try:
        notification_type = NotificationType(raw_type)
    except ValueError as error:
        raise InvalidField("type", 'must be one of "toast", "tile", "badge", "raw" (or give "template")') from error
    if "properties" in data:
        raise InvalidField("properties", 'go with "template", not with a payload')
    return SendRequest(
        notification_type=notification_type,
        payload=_parse_payload(data, notification_type),
        target=target,
        options=options,
        send_at=send_at,
    )


MAX_PROPERTIES_CHARS = 8_000


def _parse_template_send(
    data: dict[str, object], target: Target, options: WnsOptions, send_at: datetime | None
) -> SendRequest:
    name = data["template"]
    if not isinstance(name, str) or not _TEMPLATE_NAME.fullmatch(name):
        raise InvalidField("template", "must be a template name (1-64 characters of letters, digits and _ . -)")
    for other in ("type", "payload", "payloadBase64"):
        if other in data:
            raise InvalidField(other, 'a template send takes "template" and "properties", not a payload')
    raw = data.get("properties")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidField("properties", "must be an object of names to values")
    properties: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidField(f"properties.{key}", "must be a string, number or boolean")
        properties[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
        if _SURROGATE.search(key + properties[key]):
            raise InvalidField(f"properties.{key}", _NOT_TEXT)
    # A fan-out carries the properties in its queue message, as JSON (non-ASCII escaped).
    stored = stored_length(stored_json(properties))
    if stored > MAX_PROPERTIES_CHARS:
        raise InvalidField(
            "properties",
            f"together take {stored} characters as stored (JSON, non-ASCII escaped); at most {MAX_PROPERTIES_CHARS}",
        )
    kind = NotificationType.TOAST
    payload = b""
    if name == INCOMING_CALL:
        # The built-in template renders the same for every device: render it once, here.
        try:
            payload = render(INCOMING_CALL_TEMPLATE, incoming_call_properties(properties))
        except TemplateError as error:
            raise InvalidField("properties", str(error)) from error
        kind = INCOMING_CALL_TEMPLATE.notification_type
    return SendRequest(
        notification_type=kind,
        payload=payload,
        target=target,
        options=options,
        send_at=send_at,
        template=None if payload else name,
        properties=properties,
    )


def _parse_payload(data: dict[str, object], notification_type: NotificationType) -> bytes:
    text, encoded = data.get("payload"), data.get("payloadBase64")
    if text is not None and encoded is not None:
        raise InvalidField("payloadBase64", "give either payload or payloadBase64, not both")
    if encoded is not None:
        if notification_type is not NotificationType.RAW:
            raise InvalidField("payloadBase64", "is only for raw notifications; XML goes in payload")
        if not isinstance(encoded, str):
            raise InvalidField("payloadBase64", "must be a base64 string")
        try:
            payload = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidField("payloadBase64", "is not valid base64") from error
        name = "payloadBase64"
    else:
        if not isinstance(text, str):
            raise InvalidField("payload", "is required and must be a string", "MissingField")
        payload = _utf8(text, "payload")
        name = "payload"
    if not payload:
        raise InvalidField(name, "may not be empty")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ApiError(
            400, "PayloadTooLarge", f"{name}: is {len(payload)} bytes; WNS accepts at most {MAX_PAYLOAD_BYTES}", name
        )
    if notification_type.is_xml:
        validate_xml_payload(payload, notification_type)
    return payload
