"""Channel URIs at their edges: each layer of the check alone (the IP-literal guard behind an
allow-list that names the address, the label rule, the port, the authority), the 2,048-character
cap exactly, allow-list entries good and bad, and the token rule."""

import pytest

from pushfuncs.channel_uri import (
    DEFAULT_ALLOWED_HOSTS,
    MAX_CHANNEL_URI_LENGTH,
    HostPattern,
    InvalidChannelUri,
    parse_allowed_hosts,
    redact_channel_uri,
    validate_channel_uri,
)

WNS = parse_allowed_hosts(None)
PREFIX = "https://dm3p.notify.windows.com/?token="


def refused(uri: object, allowed: tuple[HostPattern, ...] = WNS) -> str:
    with pytest.raises(InvalidChannelUri) as caught:
        validate_channel_uri(uri, allowed)
    return str(caught.value)


def test_the_length_cap_is_exact() -> None:
    longest = PREFIX + "a" * (MAX_CHANNEL_URI_LENGTH - len(PREFIX))
    assert len(longest) == MAX_CHANNEL_URI_LENGTH == 2048
    assert validate_channel_uri(longest, WNS) == longest
    assert refused(longest + "a") == "is longer than 2048 characters"


@pytest.mark.parametrize("uri", [None, "", 42, b"https://dm3p.notify.windows.com/?token=a"])
def test_anything_but_a_non_empty_string_is_refused(uri: object) -> None:
    assert refused(uri) == "must be a non-empty string"


@pytest.mark.parametrize(
    ("allow", "uri"),
    [
        ("127.0.0.1", "https://127.0.0.1/?token=a"),
        ("2130706433", "https://2130706433/?token=a"),
        ("0177.0.0.1", "https://0177.0.0.1/?token=a"),
        ("0x7f.1", "https://0x7f.1/?token=a"),
        ("10.0.0.1:8443", "https://10.0.0.1:8443/?token=a"),
    ],
)
def test_the_ip_literal_guard_holds_even_when_the_allow_list_names_the_address(allow: str, uri: str) -> None:
    allowed = parse_allowed_hosts(allow)
    assert refused(uri, allowed) == "host must be a name, not an IP address"


@pytest.mark.parametrize("host", ["1a.example", "0x7g.example", "a1.b2", "0x"])
def test_names_that_only_look_numeric_are_names(host: str) -> None:
    uri = f"https://{host}/?token=a"
    assert validate_channel_uri(uri, parse_allowed_hosts(host)) == uri


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("-a.example", "host is not a valid DNS name"),
        ("a-.example", "host is not a valid DNS name"),
        ("a_b.example", "host is not a valid DNS name"),
        ("a..example", "host is not a valid DNS name"),
        ("a" * 64 + ".example", "host is not a valid DNS name"),
    ],
)
def test_the_label_rule_holds_under_a_wildcard_allow_list(host: str, reason: str) -> None:
    assert refused(f"https://{host}/?token=a", parse_allowed_hosts("*.example")) == reason


def test_a_63_character_label_is_a_name() -> None:
    uri = "https://" + "a" * 63 + ".example/?token=a"
    assert validate_channel_uri(uri, parse_allowed_hosts("*.example")) == uri


def test_each_refusal_says_why() -> None:
    assert refused("http://dm3p.notify.windows.com/?token=a") == "must use https"
    assert refused("https://dm3p.notify.windows.com/?token=a b") == "contains characters a WNS channel URI never has"
    assert refused("https://u@dm3p.notify.windows.com/?token=a") == "must not contain user information"
    assert refused("https://dm3p.notify.windows.com/?token=a#") == "must not contain a fragment"
    assert refused("https://dm3p.notify.windows.com/?token=a#f") == "must not contain a fragment"
    assert refused("https:///?token=a") == "has no host"
    assert refused("https://:443/?token=a") == "has no host"
    assert refused("https://dm3p.notify.windows.com./?token=a") == "host must not end with a dot"
    assert refused("https://dm3p.notify.windows.com:99999/?token=a") == "has an invalid port"
    assert refused("https://dm3p.notify.windows.com:44a/?token=a") == "has an invalid port"
    assert refused("https://evil.example/?token=a") == "host evil.example:443 is not on the WNS allow-list"


@pytest.mark.parametrize("netloc", ["dm3p.notify.windows.com:", "dm3p.notify.windows.com:0443"])
def test_an_authority_that_spells_the_port_oddly_is_refused(netloc: str) -> None:
    assert refused(f"https://{netloc}/?token=a") == "has an ambiguous authority"


def test_the_host_is_matched_case_insensitively_and_the_uri_kept_byte_for_byte() -> None:
    uri = "https://DM3P.Notify.Windows.COM/?token=AbC"
    assert validate_channel_uri(uri, WNS) == uri
    assert validate_channel_uri("https://dm3p.notify.windows.com:443/?token=a", WNS).endswith(":443/?token=a")


@pytest.mark.parametrize(
    "query",
    ["", "?", "?token=", "?token=&token=abc", "?token=abc&token=abc", "?tokens=abc", "?Token=abc", "?x=token"],
)
def test_exactly_one_non_empty_token_is_required(query: str) -> None:
    assert (
        refused(f"https://dm3p.notify.windows.com/{query}") == "must carry exactly one non-empty token query parameter"
    )


def test_other_query_parameters_may_come_with_the_token() -> None:
    uri = "https://dm3p.notify.windows.com/path?a=1&token=abc&b="
    assert validate_channel_uri(uri, WNS) == uri


def test_the_default_allow_list_is_wns_subdomains_on_443() -> None:
    assert DEFAULT_ALLOWED_HOSTS == "*.notify.windows.com"
    for setting in (None, "", "   "):
        assert parse_allowed_hosts(setting) == (HostPattern("notify.windows.com", True, 443),)


def test_allow_list_entries_are_trimmed_lowercased_and_empty_ones_skipped() -> None:
    patterns = parse_allowed_hosts(" Sandbox.Local:8443 , ,*.Example.COM,")
    assert patterns == (HostPattern("sandbox.local", False, 8443), HostPattern("example.com", True, 443))


@pytest.mark.parametrize(
    "entry",
    ["*.", "*", "a..b", "ev!l.com", ".example.com", "example.com.", "-a.com", "a_b.com", "*.*.com", "a.com:x"],
)
def test_bad_allow_list_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="WNS_ALLOWED_HOSTS"):
        HostPattern.parse(entry)


def test_an_allow_list_with_a_bad_entry_is_refused_whole() -> None:
    with pytest.raises(ValueError, match=r"invalid host pattern 'ev!l\.com'"):
        parse_allowed_hosts("*.notify.windows.com,ev!l.com")
    with pytest.raises(ValueError, match=r"invalid port in host pattern 'a\.com:44x'"):
        parse_allowed_hosts("a.com:44x")


def test_an_empty_port_is_the_default_port() -> None:
    assert HostPattern.parse("a.com:") == HostPattern("a.com", False, 443)


def test_an_empty_entry_alone_is_refused() -> None:
    with pytest.raises(ValueError):
        HostPattern.parse("")


def test_exact_patterns_match_only_their_host_and_port() -> None:
    exact = HostPattern.parse("sandbox.local:8443")
    assert exact.matches("sandbox.local", 8443)
    assert not exact.matches("sandbox.local", 443)
    assert not exact.matches("a.sandbox.local", 8443)
    assert not exact.matches("xsandbox.local", 8443)


def test_wildcards_match_subdomains_only_on_their_port() -> None:
    wildcard = HostPattern.parse("*.example.com")
    assert wildcard.matches("a.example.com", 443)
    assert wildcard.matches("a.b.example.com", 443)
    assert not wildcard.matches("example.com", 443)
    assert not wildcard.matches("aexample.com", 443)
    assert not wildcard.matches("a.example.com", 8443)


def test_an_allow_listed_port_is_required_in_the_uri() -> None:
    allowed = parse_allowed_hosts("sandbox.local:8443")
    assert validate_channel_uri("https://sandbox.local:8443/?token=a", allowed)
    assert refused("https://sandbox.local/?token=a", allowed) == "host sandbox.local:443 is not on the WNS allow-list"
    assert validate_channel_uri(
        "https://a.sandbox.local:8443/?token=a", parse_allowed_hosts("x.y,*.sandbox.local:8443")
    )


def test_redaction_keeps_scheme_host_and_path_only() -> None:
    assert (
        redact_channel_uri("https://h.example:8443/p/q?token=secret&x=1")
        == "https://h.example:8443/p/q?token=<redacted>"
    )
    assert redact_channel_uri("https://[::1/?token=secret") == "<unparsable channel URI>"
