"""Validation of a WNS send request against Microsoft's push request header reference.

Every check returns None when the request is acceptable, or the X-WNS-Error-Description text of the
400 answer. Where live WNS wording is unknown the text is the sandbox's own.
"""

from __future__ import annotations

import re
from functools import lru_cache
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from multidict import CIMultiDictProxy

MAX_PAYLOAD_BYTES = 5000
XML_TYPES = frozenset({"wns/toast", "wns/tile", "wns/badge"})
RAW_TYPE = "wns/raw"
_CONTENT_TYPES = {
    "wns/toast": "text/xml",
    "wns/tile": "text/xml",
    "wns/badge": "text/xml",
    RAW_TYPE: "application/octet-stream",
}
# The reference calls X-WNS-Tag and X-WNS-Group "an alphanumeric string of no more than 16 characters".
_LABEL = re.compile(r"[A-Za-z0-9]{1,16}")
_TTL = re.compile(r"[0-9]{1,10}")
_INT32_MAX = 2**31 - 1


def check_headers(headers: CIMultiDictProxy[str]) -> str | None:
    wns_type = headers.get("X-WNS-Type")
    if wns_type is None:
        return "The X-WNS-Type header is missing."
    expected_type = _CONTENT_TYPES.get(wns_type)
    if expected_type is None:
        return f"The X-WNS-Type header value '{wns_type}' is not valid; use wns/toast, wns/tile, wns/badge or wns/raw."
    content_type = headers.get("Content-Type")
    if content_type is None:
        return "The Content-Type header is missing."
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != expected_type:
        return f"The Content-Type header must be {expected_type} for {wns_type} notifications."
    return _check_optional(headers)


def _check_optional(headers: CIMultiDictProxy[str]) -> str | None:
    cache_policy = headers.get("X-WNS-Cache-Policy")
    if cache_policy is not None and cache_policy not in ("cache", "no-cache"):
        return "The X-WNS-Cache-Policy header must be cache or no-cache."
    ttl = headers.get("X-WNS-TTL")
    if ttl is not None and (not _TTL.fullmatch(ttl) or int(ttl) > _INT32_MAX):
        return "The X-WNS-TTL header must be a non-negative integer number of seconds."
    for name in ("X-WNS-Tag", "X-WNS-Group"):
        value = headers.get(name)
        if value is not None and not _LABEL.fullmatch(value):
            return f"The {name} header must be an alphanumeric string of no more than 16 characters."
    status = headers.get("X-WNS-RequestForStatus")
    if status is not None and status not in ("true", "false"):
        return "The X-WNS-RequestForStatus header must be true or false."
    priority = headers.get("X-WNS-PRIORITY")
    if priority is not None and priority not in ("1", "2", "3", "4"):
        return "The X-WNS-PRIORITY header must be 1, 2, 3 or 4."
    if "X-WNS-SuppressPopup" in headers:
        # The reference: on a Windows channel the notification is dropped and an error returned.
        return "The X-WNS-SuppressPopup header is supported on Windows Phone channels only."
    if "X-WNS-Match" in headers:
        return "The X-WNS-Match header is supported with DELETE on Windows Phone channels only."
    return None


def check_framing(headers: CIMultiDictProxy[str], content_length: int | None) -> str | None:
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return "Chunked transfer encoding is not supported; send a Content-Length."
    if content_length is None:
        return "The Content-Length header is missing."
    return None


# Senders (and benchmarks) repeat the same payloads; the verdict depends on the bytes alone.
@lru_cache(maxsize=1024)
def check_payload(wns_type: str, body: bytes) -> str | None:
    if not body:
        return "The notification payload must not be empty."
    if wns_type == RAW_TYPE:
        return None
    try:
        body.decode("utf-8")
        fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except UnicodeDecodeError:
        return "The notification payload must be UTF-8 encoded XML."
    except DefusedXmlException:
        return "The notification payload must not contain a DTD or entity declarations."
    except ParseError as exc:
        return f"The notification payload is not well-formed XML: {exc}."
    return None
