"""Channel URI checks: only https hosts on the allow-list ever get our bearer token."""

import pytest

from pushfuncs.channel_uri import (
    InvalidChannelUri,
    parse_allowed_hosts,
    redact_channel_uri,
    validate_channel_uri,
)

WNS = parse_allowed_hosts(None)
GOOD = "https://dm3p.notify.windows.com/?token=AwYAAAB%2bQ%2fabc%3d"

HOSTILE = [
    "http://dm3p.notify.windows.com/?token=abc",  # not https
    "HTTPS://dm3p.notify.windows.com/?token=abc",  # odd scheme spelling
    "https://evil.example/?x.notify.windows.com&token=abc",  # allowed name only in the query
    "https://evil.example/dm3p.notify.windows.com?token=abc",  # only in the path
    "https://dm3p.notify.windows.com@evil.example/?token=abc",  # userinfo trick
    "https://user:pw@dm3p.notify.windows.com/?token=abc",  # userinfo at all
    "https://dm3p.notify.windows.com.evil.example/?token=abc",  # suffix look-alike
    "https://notify.windows.com.evil.example/?token=abc",
    "https://evilnotify.windows.com/?token=abc",  # no dot boundary
    "https://dm3p.notify.windows.co/?token=abc",
    "https://dm3p.notify.windows.com:8443/?token=abc",  # other port
    "https://dm3p.notify.windows.com:0443x/?token=abc",
    "https://dm3p.notify.windows.com./?token=abc",  # trailing dot
    "https://127.0.0.1/?token=abc",  # IP literals in every notation
    "https://2130706433/?token=abc",
    "https://0177.0.0.1/?token=abc",
    "https://0x7f.0.0.1/?token=abc",
    "https://[::1]/?token=abc",
    "https://[::ffff:127.0.0.1]/?token=abc",
    "https://dm3p.notify.windows.com\\@evil.example/?token=abc",  # backslash
    "https://dm3p.n\u03bftify.windows.com/?token=abc",  # Greek omicron look-alike
    "https://xn--dm3p-notify.windows.com/?token=abc",  # punycode not under the domain
    "https://dm3p.notify.windows.com/?token=abc#frag",
    "https://dm3p.notify.windows.com/",  # no token
    "https://dm3p.notify.windows.com/?token=",  # empty token
    "https://dm3p.notify.windows.com/?token=a&token=b",  # two tokens
    "https://dm3p.notify.windows.com/?token=a b",  # space
    "https://dm3p.notify.windows.com/?token=a\r\nX-Evil: 1",  # header injection
    "https://notify.windows.com/?token=abc",  # the bare domain is not a channel host
    "https://%64m3p.notify.windows.com/?token=abc",  # percent-encoded host
    "https:///?token=abc",
    "https://" + "a" * 2100 + ".notify.windows.com/?token=abc",  # absurd length
    "",
    None,
    42,
]


def test_a_real_channel_uri_is_accepted_byte_for_byte() -> None:
    assert validate_channel_uri(GOOD, WNS) == GOOD


@pytest.mark.parametrize(
    "uri", ["https://wns2-by3p.notify.windows.com/?token=x", "https://db5.notify.windows.com:443/?token=x"]
)
def test_other_wns_hosts_are_accepted(uri: str) -> None:
    assert validate_channel_uri(uri, WNS) == uri


@pytest.mark.parametrize("uri", HOSTILE)
def test_hostile_channel_uris_are_refused(uri: object) -> None:
    with pytest.raises(InvalidChannelUri):
        validate_channel_uri(uri, WNS)


def test_allow_list_with_port_allows_only_that_port() -> None:
    allowed = parse_allowed_hosts("localhost:8443, *.notify.windows.com")
    assert validate_channel_uri("https://localhost:8443/?token=x", allowed)
    assert validate_channel_uri("https://a.notify.windows.com/?token=x", allowed)
    for uri in ("https://localhost/?token=x", "https://localhost:9443/?token=x", "https://sub.localhost:8443/?token=x"):
        with pytest.raises(InvalidChannelUri):
            validate_channel_uri(uri, allowed)


def test_bad_allow_list_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        parse_allowed_hosts("*.notify.windows.com:abc")


def test_redaction_removes_the_token() -> None:
    redacted = redact_channel_uri(GOOD)
    assert "AwYAAAB" not in redacted
    assert redacted.startswith("https://dm3p.notify.windows.com/")
