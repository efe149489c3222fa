"""Channel URI checks. A channel URI is where we send our bearer token, so it must name WNS.

Microsoft: "always ensure that the channel URI uses the domain notify.windows.com ... the
subdomain is subject to change". We match on the parsed host, refuse anything ambiguous
(userinfo, IP literals in any notation, other ports, non-ASCII look-alikes, trailing dots,
backslashes) and store the URI byte for byte: WNS answers 404 to a re-encoded one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

MAX_CHANNEL_URI_LENGTH = 2048
DEFAULT_ALLOWED_HOSTS = "*.notify.windows.com"

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Printable ASCII without space, backslash, quotes, angle brackets, braces, brackets (IPv6 literals
# are refused anyway, and nowhere else may a URI hold them), pipe, caret, backtick.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]+")
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+))*")


class InvalidChannelUri(ValueError):
    """The channel URI is not one we may send a bearer token to; the message says why."""


@dataclass(frozen=True)
class HostPattern:
    """One allow-list entry: `host`, `*.domain` (subdomains only), optional `:port` (default 443)."""

    host: str
    wildcard: bool
    port: int

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        text = text.strip().lower()
        host, _, port = text.partition(":")
        wildcard = host.startswith("*.")
        if wildcard:
            host = host[2:]
        if not host or not all(_LABEL.fullmatch(label) for label in host.split(".")):
            raise ValueError(f"invalid host pattern {text!r} in WNS_ALLOWED_HOSTS")
        if port and not port.isdigit():
            raise ValueError(f"invalid port in host pattern {text!r} in WNS_ALLOWED_HOSTS")
        return cls(host=host, wildcard=wildcard, port=int(port) if port else 443)

    def matches(self, host: str, port: int) -> bool:
        if port != self.port:
            return False
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host


def parse_allowed_hosts(setting: str | None) -> tuple[HostPattern, ...]:
    """Parse `WNS_ALLOWED_HOSTS` (comma-separated patterns); empty means the WNS default."""
    text = setting if setting and setting.strip() else DEFAULT_ALLOWED_HOSTS
    return tuple(HostPattern.parse(part) for part in text.split(",") if part.strip())


def _is_ip_literal(host: str) -> bool:
    # Dotted quads, decimal (2130706433), octal (0177.0.0.1) and hex (0x7f.1) forms all resolve.
    return host.startswith("[") or ":" in host or bool(_NUMERIC_HOST.fullmatch(host))


def validate_channel_uri(uri: object, allowed: tuple[HostPattern, ...]) -> str:
    """Return `uri` unchanged if we may send to it, else raise `InvalidChannelUri`."""
    if not isinstance(uri, str) or not uri:
        raise InvalidChannelUri("must be a non-empty string")
    if len(uri) > MAX_CHANNEL_URI_LENGTH:
        raise InvalidChannelUri(f"is longer than {MAX_CHANNEL_URI_LENGTH} characters")
    if not _URI_CHARS.fullmatch(uri):
        raise InvalidChannelUri("contains characters a WNS channel URI never has")
    if not uri.startswith("https://"):
        raise InvalidChannelUri("must use https")
    try:
        parts = urlsplit(uri)
    except ValueError as error:  # urlsplit's own refusals (e.g. "Invalid IPv6 URL")
        raise InvalidChannelUri("is not a valid URI") from error
    netloc = parts.netloc
    if "@" in netloc:
        raise InvalidChannelUri("must not contain user information")
    if parts.fragment or "#" in uri:
        raise InvalidChannelUri("must not contain a fragment")
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidChannelUri("has no host")
    if host.endswith("."):
        raise InvalidChannelUri("host must not end with a dot")
    if _is_ip_literal(host) or netloc.startswith("["):
        raise InvalidChannelUri("host must be a name, not an IP address")
    if not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise InvalidChannelUri("host is not a valid DNS name")
    try:
        port = parts.port or 443
    except ValueError as error:
        raise InvalidChannelUri("has an invalid port") from error
    if netloc.lower() not in (host, f"{host}:{port}"):
        raise InvalidChannelUri("has an ambiguous authority")
    if not any(pattern.matches(host, port) for pattern in allowed):
        raise InvalidChannelUri(f"host {host}:{port} is not on the WNS allow-list")
    tokens = [value for key, value in parse_qsl(parts.query, keep_blank_values=True) if key == "token"]
    if len(tokens) != 1 or not tokens[0]:
        raise InvalidChannelUri("must carry exactly one non-empty token query parameter")
    return uri


# The shape of every channel URI WNS hands out: https, a lower-case DNS name (and a port, for a
# test double), path "/", one token of unreserved characters and escapes. For a URI of this shape
# every rule of validate_channel_uri except those on the authority holds by construction
# (characters, scheme, no user information or fragment, exactly one non-empty token), so its
# verdict is its authority's: the check at send time remembers the authorities that passed.
_SEND_SHAPE = re.compile(r"https://([a-z0-9.\-]+(?::[0-9]+)?)/\?token=[A-Za-z0-9\-._~%]+")
_MAX_REMEMBERED_HOSTS = 4096
_hosts_passed: dict[str, tuple[HostPattern, ...]] = {}  # authority -> the allow-list it passed


def check_channel_uri_at_send(uri: object, allowed: tuple[HostPattern, ...]) -> str:
    """`validate_channel_uri`, exactly as strict, with the authority's verdict remembered (every send checks)."""
    if isinstance(uri, str) and len(uri) <= MAX_CHANNEL_URI_LENGTH:
        shape = _SEND_SHAPE.fullmatch(uri)
        if shape is not None:
            authority = shape.group(1)
            passed = _hosts_passed.get(authority)
            if passed is allowed or (passed is not None and passed == allowed):
                return uri
            validate_channel_uri(uri, allowed)
            if len(_hosts_passed) >= _MAX_REMEMBERED_HOSTS:
                _hosts_passed.clear()
            _hosts_passed[authority] = allowed
            return uri
    return validate_channel_uri(uri, allowed)


def redact_channel_uri(uri: str) -> str:
    """The channel URI without its `token` (safe to log)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable channel URI>"
    return f"{parts.scheme}://{parts.netloc}{parts.path}?token=<redacted>"
