"""The libcurl client's own parsing: the request target it sends and the headers it reads back."""

from __future__ import annotations

import pytest

from pushfuncs.http_transport import parse_header_lines, split_target


@pytest.mark.parametrize(
    ("url", "origin", "target"),
    [
        (
            "https://db5.notify.windows.com/?token=AwYAAAB%2bQ%2fa%3d",
            "https://db5.notify.windows.com",
            "/?token=AwYAAAB%2bQ%2fa%3d",
        ),
        ("https://h.notify.windows.com:443/a/%2e%2E/b?x=%2B", "https://h.notify.windows.com:443", "/a/%2e%2E/b?x=%2B"),
        ("https://h.notify.windows.com?token=a", "https://h.notify.windows.com", "/?token=a"),
        ("https://h.notify.windows.com", "https://h.notify.windows.com", "/"),
        ("https://h.notify.windows.com/?token=a#frag", "https://h.notify.windows.com", "/?token=a"),
    ],
)
def test_split_target_keeps_the_target_as_written(url: str, origin: str, target: str) -> None:
    assert split_target(url) == (origin, target)


def test_headers_of_the_final_response_first_of_repeated_any_case() -> None:
    raw = (
        b"HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nX-WNS-Status: received \r\nX-WNS-Msg-ID: 1A\r\nx-wns-msg-id: 2B\r\n"
        b"MS-CV: a:b\r\nEmpty:\r\n\r\n"
    )
    headers = parse_header_lines(raw.splitlines(keepends=True))  # one line per callback, as libcurl gives them
    assert headers.get("X-WNS-STATUS") == headers["x-wns-status"] == "received"
    assert headers["X-Wns-Msg-Id"] == "1A"
    assert headers["ms-cv"] == "a:b"
    assert headers.get("empty") == ""
    assert "x-early" not in headers and "X-WNS-Status" in headers
    assert headers.get("retry-after") is None
