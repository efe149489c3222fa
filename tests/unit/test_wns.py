"""The WNS protocol module: every header, every response code."""

import random

import httpx
import pytest

from pushfuncs.wns import (
    RESPONSE_ACTIONS,
    Action,
    NotificationType,
    WnsOptions,
    backoff_seconds,
    build_wns_headers,
    classify_transport_error,
    classify_wns_response,
    new_correlation_vector,
)


@pytest.mark.parametrize(
    ("kind", "wns_type", "content_type"),
    [
        (NotificationType.TOAST, "wns/toast", "text/xml"),
        (NotificationType.TILE, "wns/tile", "text/xml"),
        (NotificationType.BADGE, "wns/badge", "text/xml"),
        (NotificationType.RAW, "wns/raw", "application/octet-stream"),
    ],
)
def test_type_and_content_type_headers(kind: NotificationType, wns_type: str, content_type: str) -> None:
    headers = build_wns_headers(kind, WnsOptions(), "tok")
    assert headers["X-WNS-Type"] == wns_type
    assert headers["Content-Type"] == content_type
    assert headers["Authorization"] == "Bearer tok"
    assert not any(h.startswith("X-WNS-") and h != "X-WNS-Type" for h in headers)


def test_every_optional_header() -> None:
    options = WnsOptions(cache_policy="no-cache", ttl=60, tag="t1", group="g1", request_for_status=True, priority=2)
    headers = build_wns_headers(NotificationType.TILE, options, "tok", "cv.0")
    assert headers["X-WNS-Cache-Policy"] == "no-cache"
    assert headers["X-WNS-TTL"] == "60"
    assert headers["X-WNS-Tag"] == "t1"
    assert headers["X-WNS-Group"] == "g1"
    assert headers["X-WNS-RequestForStatus"] == "true"
    assert headers["X-WNS-PRIORITY"] == "2"
    assert headers["MS-CV"] == "cv.0"
    assert "X-WNS-SuppressPopup" not in headers


def test_request_for_status_false_is_sent_explicitly() -> None:
    assert WnsOptions(request_for_status=False).to_headers() == {"X-WNS-RequestForStatus": "false"}


def test_options_round_trip_through_the_queue_message_form() -> None:
    options = WnsOptions(cache_policy="cache", ttl=5, priority=4)
    assert WnsOptions.from_dict(options.to_dict()) == options


def test_correlation_vector_is_fresh_and_well_formed() -> None:
    vectors = {new_correlation_vector() for _ in range(100)}
    assert len(vectors) == 100
    for cv in vectors:
        base, _, ext = cv.partition(".")
        assert len(base) == 22 and ext == "0"
        assert base[-1] in "AQgw"  # 128 bits in 22 base64 characters: the last 4 bits are zero


def classify(status: int, **headers: str) -> Action:
    return classify_wns_response(status, httpx.Headers(headers)).action


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (400, Action.FAIL),
        (401, Action.REFRESH_TOKEN),
        (403, Action.FAIL),
        (404, Action.REMOVE_CHANNEL),
        (405, Action.FAIL),
        (406, Action.RETRY),
        (410, Action.REMOVE_CHANNEL),
        (412, Action.RETRY),
        (413, Action.FAIL),
        (429, Action.RETRY),
        (500, Action.RETRY),
        (503, Action.RETRY),
        (502, Action.RETRY),
        (504, Action.RETRY),
        (418, Action.FAIL),
        (301, Action.FAIL),
        (302, Action.FAIL),
        (307, Action.FAIL),
    ],
)
def test_every_status_code(status: int, action: Action) -> None:
    assert classify(status) is action


def test_table_covers_the_documented_codes() -> None:
    assert set(RESPONSE_ACTIONS) >= {200, 400, 401, 403, 404, 405, 406, 410, 413, 429, 500, 503}


@pytest.mark.parametrize(
    "header", ["X-WNS-Status", "X-WNS-NotificationStatus", "x-wns-status", "X-WNS-NOTIFICATIONSTATUS"]
)
@pytest.mark.parametrize(
    ("value", "action"),
    [("received", Action.DELIVERED), ("dropped", Action.DROPPED), ("channelthrottled", Action.RETRY)],
)
def test_200_reads_both_status_headers(header: str, value: str, action: Action) -> None:
    assert classify(200, **{header: value}) is action


def test_200_without_status_header_is_received() -> None:
    assert classify(200) is Action.DELIVERED


def test_200_with_unknown_status_is_not_called_delivered() -> None:
    assert classify(200, **{"X-WNS-Status": "mystery"}) is Action.FAIL


def test_200_keeps_the_diagnostic_headers() -> None:
    result = classify_wns_response(
        200,
        httpx.Headers(
            {
                "X-WNS-Status": "dropped",
                "X-WNS-Error-Description": "Device is offline",
                "X-WNS-Msg-ID": "1ABC",
                "X-WNS-Debug-Trace": "DB5SCH101",
                "MS-CV": "abc.0",
                "X-WNS-DeviceConnectionStatus": "disconnected",
            }
        ),
    )
    assert result.wns_status == "dropped"
    assert result.error_description == "Device is offline"
    assert (result.msg_id, result.debug_trace, result.ms_cv) == ("1ABC", "DB5SCH101", "abc.0")
    assert result.device_connection_status == "disconnected"
    assert result.metric == "wns.dropped"


def test_domain_blocked_410_stops_sending() -> None:
    assert classify(410, **{"X-WNS-Error-Description": "Domain Blocked"}) is Action.STOP_SENDING
    assert classify(410, **{"X-WNS-Error-Description": "Revoked channel URL"}) is Action.REMOVE_CHANNEL


def test_domain_blocked_counts_once_under_its_own_metric() -> None:
    blocked = classify_wns_response(410, httpx.Headers({"X-WNS-Error-Description": "Domain Blocked"}))
    assert blocked.metric == "wns.domainblocked"


@pytest.mark.parametrize("status", [406, 429, 503])
def test_retry_after_is_read(status: int) -> None:
    result = classify_wns_response(status, httpx.Headers({"Retry-After": "7"}))
    assert result.retry_after == 7
    assert backoff_seconds(3, result.retry_after) == 7


@pytest.mark.parametrize("status", [200, 404, 410, 413])
def test_retry_after_is_kept_only_on_an_answer_that_is_retried(status: int) -> None:
    assert classify_wns_response(status, httpx.Headers({"Retry-After": "7"})).retry_after is None


def test_unparseable_retry_after_is_ignored() -> None:
    assert classify_wns_response(503, httpx.Headers({"Retry-After": "soon"})).retry_after is None


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_seconds(n, rng=rng) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        ceiling = 2.0 * 2 ** (n - 1)
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_seconds(40, rng=rng) <= 900
    assert backoff_seconds(1, retry_after=10_000) == 900


def test_transport_errors_are_retried() -> None:
    assert classify_transport_error(timed_out=True).action is Action.RETRY
    assert classify_transport_error(timed_out=False).action is Action.RETRY
    assert "timed out" in classify_transport_error(timed_out=True).reason
    assert "network error" in classify_transport_error(timed_out=False).reason


def test_describe_never_contains_a_token() -> None:
    result = classify_wns_response(400, httpx.Headers({"X-WNS-Error-Description": "bad header"}))
    assert result.describe() == "WNS 400: bad request: invalid or conflicting headers: bad header"
