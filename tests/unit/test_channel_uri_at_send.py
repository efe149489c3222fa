"""The allow-list check at send time remembers hosts, and is exactly as strict as validate_channel_uri."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushfuncs import channel_uri
from pushfuncs.channel_uri import (
    MAX_CHANNEL_URI_LENGTH,
    InvalidChannelUri,
    check_channel_uri_at_send,
    parse_allowed_hosts,
    validate_channel_uri,
)

ALLOW_LISTS = [
    parse_allowed_hosts(None),
    parse_allowed_hosts("127.0.0.1,localhost:8443,*.notify.windows.com,sandbox.test"),
    parse_allowed_hosts("sandbox.test:443"),
]
GOOD = "https://db5.notify.windows.com/?token=AwYAAAB%2bQ%2fabc%3d"
CORPUS = [
    GOOD,
    "https://sandbox.test/?token=AwYAAAB%2bQ%2fabc%3d",
    "https://localhost:8443/?token=abc",
    "https://localhost/?token=abc",
    "https://localhost:08443/?token=abc",
    "https://localhost:8443:1/?token=abc",
    "https://localhost:99999/?token=abc",
    "https://localhost:/?token=abc",
    "https://sandbox.test:443/?token=abc",
    "https://sandbox.test:0443/?token=abc",
    "https://127.0.0.1/?token=abc",
    "https://0x7f.1/?token=abc",
    "https://2130706433/?token=abc",
    "https://db5.notify.windows.com/?token=",
    "https://db5.notify.windows.com/?token=a&token=b",
    "https://db5.notify.windows.com/?token=a#f",
    "https://db5.notify.windows.com:443/?token=a",
    "https://db5.notify.windows.com:444/?token=a",
    "https://DB5.notify.windows.com/?token=a",
    "https://db5.notify.windows.com./?token=a",
    "https://user@db5.notify.windows.com/?token=a",
    "http://db5.notify.windows.com/?token=a",
    "https://db5.notify.windows.com/x?token=a",
    "https://db5.notify.windows.com/?token=a b",
    "https://db5.notify.windows.com/?tok=a",
    "https://notify.windows.com/?token=a",
    "https://evil.example/?token=a",
    "https://a..notify.windows.com/?token=a",
    "https://-a.notify.windows.com/?token=a",
    "https://" + "a" * 64 + ".notify.windows.com/?token=a",
    "https://db5.notify.windows.com.evil.example/?token=a",
    "https://db5.notify.windows.com/?token=" + "a" * (MAX_CHANNEL_URI_LENGTH - 38),
    "https://db5.notify.windows.com/?token=" + "a" * (MAX_CHANNEL_URI_LENGTH - 37),
    "",
    None,
]


def verdict(check: object, uri: object, allowed: object) -> str:
    try:
        return f"ok {check(uri, allowed)}"  # type: ignore[operator]
    except InvalidChannelUri as error:
        return f"refused: {error}"


@pytest.mark.parametrize("allowed", ALLOW_LISTS)
def test_same_verdict_as_the_full_check_before_and_after_hosts_are_remembered(allowed: tuple) -> None:
    channel_uri._hosts_passed.clear()
    first = [verdict(check_channel_uri_at_send, uri, allowed) for uri in CORPUS]
    again = [verdict(check_channel_uri_at_send, uri, allowed) for uri in reversed(CORPUS)]
    full = [verdict(validate_channel_uri, uri, allowed) for uri in CORPUS]
    assert first == full
    assert list(reversed(again)) == full


def test_a_host_remembered_for_one_allow_list_is_not_allowed_by_another() -> None:
    channel_uri._hosts_passed.clear()
    assert check_channel_uri_at_send(GOOD, ALLOW_LISTS[0]) == GOOD
    with pytest.raises(InvalidChannelUri, match="not on the WNS allow-list"):
        check_channel_uri_at_send(GOOD, ALLOW_LISTS[2])


HOSTS = st.sampled_from(
    ["db5.notify.windows.com", "sandbox.test", "localhost", "127.0.0.1", "evil.example", "DB5.notify.windows.com"]
)
PORTS = st.sampled_from(["", ":443", ":0443", ":8443", ":08443", ":99999", ":"])
TAILS = st.text(alphabet="abcAB09%2bf=&#?/:@.-_~+ ", max_size=40)


@settings(max_examples=400, deadline=None)
@given(host=HOSTS, port=PORTS, tail=TAILS, which=st.integers(0, 2))
def test_generated_uris_get_the_full_checks_verdict(host: str, port: str, tail: str, which: int) -> None:
    allowed = ALLOW_LISTS[which]
    uri = f"https://{host}{port}/?token={tail}"
    assert verdict(check_channel_uri_at_send, uri, allowed) == verdict(validate_channel_uri, uri, allowed)
