"""The WNS protocol at its edges: status ranges between the table's rows, X-WNS-Status in any
case, Retry-After 0 and negative, backoff's exact bounds, and post_to_channel's three outcomes."""

import re
from collections.abc import Mapping

import pytest

from pushfuncs.wns import (
    DOMAIN_BLOCKED,
    MAX_PAYLOAD_BYTES,
    MAX_TAG_LENGTH,
    NETWORK_ERROR,
    REDIRECT_REFUSED,
    TIMEOUT,
    UNKNOWN_CLIENT_ERROR,
    UNKNOWN_SERVER_ERROR,
    UNKNOWN_SUCCESS,
    Action,
    NotificationType,
    WnsOptions,
    WnsResult,
    backoff_seconds,
    build_wns_headers,
    classify_transport_error,
    classify_wns_response,
    new_correlation_vector,
    post_to_channel,
)


class Headers(dict[str, str]):
    """Case-insensitive, as the HTTP client's headers are."""

    def __init__(self, **values: str) -> None:
        super().__init__({k.replace("_", "-").lower(): v for k, v in values.items()})

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)


def test_limits() -> None:
    assert MAX_PAYLOAD_BYTES == 5000
    assert MAX_TAG_LENGTH == 16


@pytest.mark.parametrize(
    ("kind", "wns_type", "content_type", "is_xml"),
    [
        (NotificationType.TOAST, "wns/toast", "text/xml", True),
        (NotificationType.TILE, "wns/tile", "text/xml", True),
        (NotificationType.BADGE, "wns/badge", "text/xml", True),
        (NotificationType.RAW, "wns/raw", "application/octet-stream", False),
    ],
)
def test_each_type(kind: NotificationType, wns_type: str, content_type: str, is_xml: bool) -> None:
    assert (kind.wns_type, kind.content_type, kind.is_xml) == (wns_type, content_type, is_xml)


def test_options_give_exactly_their_headers() -> None:
    assert WnsOptions().to_headers() == {}
    options = WnsOptions("no-cache", 0, "t", "g", True, 4)
    assert options.to_headers() == {
        "X-WNS-Cache-Policy": "no-cache",
        "X-WNS-TTL": "0",
        "X-WNS-Tag": "t",
        "X-WNS-Group": "g",
        "X-WNS-RequestForStatus": "true",
        "X-WNS-PRIORITY": "4",
    }
    assert WnsOptions(request_for_status=False).to_headers() == {"X-WNS-RequestForStatus": "false"}
    assert WnsOptions(priority=1).to_headers() == {"X-WNS-PRIORITY": "1"}
    assert WnsOptions(ttl=2147483647).to_headers() == {"X-WNS-TTL": "2147483647"}


def test_options_stored_form_keeps_only_what_was_set_and_ignores_unknown_keys() -> None:
    assert WnsOptions(tag="a", request_for_status=False).to_dict() == {"tag": "a", "request_for_status": False}
    assert WnsOptions.from_dict({"tag": "a", "ttl": 5, "unknown": 1}) == WnsOptions(tag="a", ttl=5)
    assert WnsOptions.from_dict({}) == WnsOptions()


def test_headers_of_one_send() -> None:
    headers = build_wns_headers(NotificationType.RAW, WnsOptions(ttl=60), "tok", "cv.0")
    assert headers == {
        "Authorization": "Bearer tok",
        "Content-Type": "application/octet-stream",
        "X-WNS-Type": "wns/raw",
        "MS-CV": "cv.0",
        "X-WNS-TTL": "60",
    }
    generated = build_wns_headers(NotificationType.TOAST, WnsOptions(), "tok")
    assert re.fullmatch(r"[A-Za-z0-9+/]{22}\.0", generated["MS-CV"])
    assert generated["Content-Type"] == "text/xml"


def test_correlation_vectors_are_22_base64_characters_and_differ() -> None:
    vectors = {new_correlation_vector() for _ in range(50)}
    assert len(vectors) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9+/]{22}\.0", v) for v in vectors)


@pytest.mark.parametrize("value", ["Dropped", "DROPPED", " dropped ", "dRoPpEd"])
def test_x_wns_status_is_read_in_any_case(value: str) -> None:
    result = classify_wns_response(200, Headers(x_wns_status=value))
    assert result.action is Action.DROPPED
    assert result.wns_status == "dropped"


def test_the_current_status_header_wins_over_the_legacy_one() -> None:
    headers = Headers(x_wns_status="received", x_wns_notificationstatus="dropped")
    assert classify_wns_response(200, headers).action is Action.DELIVERED
    legacy = classify_wns_response(200, Headers(x_wns_notificationstatus="ChannelThrottled"))
    assert legacy.action is Action.RETRY
    assert legacy.wns_status == "channelthrottled"


def test_a_blank_status_is_none_and_means_received() -> None:
    result = classify_wns_response(200, Headers(x_wns_status="  "))
    assert result.wns_status is None
    assert result.action is Action.DELIVERED
    assert classify_wns_response(200, Headers()).wns_status is None


@pytest.mark.parametrize(
    ("status", "rule"),
    [
        (100, UNKNOWN_SUCCESS),
        (199, UNKNOWN_SUCCESS),
        (201, UNKNOWN_SUCCESS),
        (204, UNKNOWN_SUCCESS),
        (299, UNKNOWN_SUCCESS),
        (300, REDIRECT_REFUSED),
        (302, REDIRECT_REFUSED),
        (399, REDIRECT_REFUSED),
        (402, UNKNOWN_CLIENT_ERROR),
        (499, UNKNOWN_CLIENT_ERROR),
        (501, UNKNOWN_SERVER_ERROR),
        (599, UNKNOWN_SERVER_ERROR),
        (600, UNKNOWN_SERVER_ERROR),
    ],
)
def test_statuses_outside_the_table(status: int, rule: object) -> None:
    result = classify_wns_response(status, Headers(x_wns_status="received"))
    assert (result.action, result.reason, result.metric) == (rule.action, rule.reason, rule.metric)  # type: ignore[attr-defined]
    assert result.status_code == status


def test_unknown_rules_are_what_they_say() -> None:
    assert UNKNOWN_SUCCESS.action is Action.FAIL
    assert REDIRECT_REFUSED.action is Action.FAIL
    assert UNKNOWN_CLIENT_ERROR.action is Action.FAIL
    assert UNKNOWN_SERVER_ERROR.action is Action.RETRY


@pytest.mark.parametrize("description", ["Domain Blocked", "the sending DOMAIN BLOCKED by policy"])
def test_domain_blocked_is_read_in_any_case_on_410_only(description: str) -> None:
    assert classify_wns_response(410, Headers(x_wns_error_description=description)).action is Action.STOP_SENDING
    assert classify_wns_response(410, Headers(x_wns_error_description=description)).metric == DOMAIN_BLOCKED.metric
    assert classify_wns_response(404, Headers(x_wns_error_description=description)).action is Action.REMOVE_CHANNEL
    assert classify_wns_response(410, Headers(x_wns_error_description="expired")).action is Action.REMOVE_CHANNEL
    assert classify_wns_response(410, Headers()).action is Action.REMOVE_CHANNEL


def test_every_diagnostic_header_is_kept() -> None:
    result = classify_wns_response(
        404,
        Headers(
            x_wns_error_description="gone",
            x_wns_msg_id="m1",
            x_wns_debug_trace="trace",
            ms_cv="cv.1",
            x_wns_deviceconnectionstatus="connected",
        ),
    )
    assert (result.error_description, result.msg_id, result.debug_trace, result.ms_cv) == (
        "gone",
        "m1",
        "trace",
        "cv.1",
    )
    assert result.device_connection_status == "connected"
    assert result.retry_after is None


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        (Headers(retry_after="0"), 0.0),
        (Headers(retry_after=" 7.5 "), 7.5),
        (Headers(retry_after="-1", x_wns_continue_after="3"), 3.0),
        (Headers(retry_after="soon", x_wns_continue_after="4"), 4.0),
        (Headers(retry_after="2", x_wns_continue_after="9"), 2.0),
        (Headers(x_wns_continue_after="0"), 0.0),
        (Headers(retry_after="-1"), None),
        (Headers(retry_after="Wed, 21 Oct 2015 07:28:00 GMT"), None),
        (Headers(), None),
    ],
)
def test_retry_after(headers: Headers, seconds: float | None) -> None:
    assert classify_wns_response(503, headers).retry_after == seconds


def test_transport_errors() -> None:
    timeout = classify_transport_error(True, "read")
    assert (timeout.action, timeout.reason, timeout.metric, timeout.status_code) == (
        Action.RETRY,
        "timed out (read)",
        TIMEOUT.metric,
        None,
    )
    network = classify_transport_error(False)
    assert (network.action, network.reason, network.metric) == (Action.RETRY, "network error", NETWORK_ERROR.metric)
    assert TIMEOUT.reason == "timed out"
    assert NETWORK_ERROR.reason == "network error"


def test_describe() -> None:
    assert classify_wns_response(404, Headers()).describe() == "WNS 404: channel not found"
    described = classify_wns_response(400, Headers(x_wns_error_description="bad header")).describe()
    assert described == "WNS 400: bad request: invalid or conflicting headers: bad header"
    assert classify_transport_error(False, "reset").describe() == "no WNS response: network error (reset)"
    assert WnsResult(Action.FAIL, "r", "m", status_code=0).describe() == "no WNS response: r"


class Bounds:
    """An rng that returns the bounds it was asked for, so the jitter's range is checked exactly."""

    def uniform(self, low: float, high: float) -> tuple[float, float]:  # type: ignore[override]
        return (low, high)


@pytest.mark.parametrize(
    ("attempt", "bounds"),
    [(0, (1.0, 2.0)), (1, (1.0, 2.0)), (2, (2.0, 4.0)), (3, (4.0, 8.0)), (10, (450.0, 900.0)), (100, (450.0, 900.0))],
)
def test_backoff_is_full_jitter_below_a_doubling_ceiling(attempt: int, bounds: tuple[float, float]) -> None:
    assert backoff_seconds(attempt, rng=Bounds()) == bounds  # type: ignore[arg-type]


def test_backoff_takes_base_and_cap() -> None:
    assert backoff_seconds(2, base=3.0, cap=5.0, rng=Bounds()) == (2.5, 5.0)  # type: ignore[arg-type]
    assert backoff_seconds(1, base=3.0, rng=Bounds()) == (1.5, 3.0)  # type: ignore[arg-type]


def test_backoff_without_an_rng_is_random_within_its_bounds() -> None:
    delays = {backoff_seconds(3) for _ in range(20)}
    assert len(delays) > 1
    assert all(4.0 <= d <= 8.0 for d in delays)


@pytest.mark.parametrize(
    ("retry_after", "delay"), [(0.0, 0.0), (-5.0, 0.0), (12.0, 12.0), (900.0, 900.0), (901.0, 900.0)]
)
def test_retry_after_is_honoured_within_zero_and_the_cap(retry_after: float, delay: float) -> None:
    assert backoff_seconds(5, retry_after=retry_after, rng=Bounds()) == delay  # type: ignore[arg-type]
    assert backoff_seconds(5, retry_after=1000.0, cap=30.0) == 30.0


class Answered:
    status = 410
    headers: Mapping[str, str] = Headers(x_wns_error_description="Domain blocked")


class Poster:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, Mapping[str, str], bytes]] = []

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Answered:
        self.calls.append((url, headers, body))
        if self.error is not None:
            raise self.error
        return Answered()


class TransportError(Exception):
    def __init__(self, message: str, timed_out: object) -> None:
        super().__init__(message)
        self.timed_out = timed_out


async def test_post_to_channel_sends_once_and_classifies_the_answer() -> None:
    poster = Poster()
    result = await post_to_channel(poster, "https://c.notify.windows.com/?token=a", {"A": "b"}, b"body")
    assert poster.calls == [("https://c.notify.windows.com/?token=a", {"A": "b"}, b"body")]
    assert result.action is Action.STOP_SENDING
    assert result.status_code == 410


@pytest.mark.parametrize(
    ("timed_out", "reason"),
    [(True, "timed out (slow)"), (False, "network error (slow)"), (0, "network error (slow)"), (1, "timed out (slow)")],
)
async def test_post_to_channel_turns_transport_errors_into_retries(timed_out: object, reason: str) -> None:
    result = await post_to_channel(Poster(TransportError("slow", timed_out)), "u", {}, b"")
    assert result.action is Action.RETRY
    assert result.reason == reason


async def test_post_to_channel_lets_a_programming_error_raise() -> None:
    with pytest.raises(KeyError):
        await post_to_channel(Poster(KeyError("bug")), "u", {}, b"")
