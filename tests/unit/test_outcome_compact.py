"""A target's outcome in its stored compact form: what is written reads back the same."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from pushfuncs.storage.notifications import TargetOutcome

WHEN = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
text = st.none() | st.text(max_size=40)


@given(
    status=st.sampled_from(["delivered", "failed", "retrying"]),
    attempts=st.integers(min_value=1, max_value=10),
    reason=text,
    status_code=st.none() | st.integers(min_value=100, max_value=599),
    wns_status=text,
    error_description=text,
    msg_id=text,
    debug_trace=text,
    ms_cv=text,
    device_connection_status=text,
    channel_removed=st.booleans(),
)
def test_an_outcome_reads_back_from_its_compact_form(**fields: object) -> None:
    outcome = TargetOutcome(installation_id="inst-1", updated_at=WHEN, **fields)  # type: ignore[arg-type]
    compact = outcome.to_compact()
    assert None not in compact.values() and compact.get("x", True) is True  # absent rather than empty
    assert TargetOutcome.from_compact("inst-1", compact, WHEN) == outcome


def test_only_what_is_known_is_written() -> None:
    outcome = TargetOutcome("inst-1", "delivered", 1, WHEN, status_code=200, wns_status="received", msg_id="A1")
    assert outcome.to_compact() == {"s": "delivered", "a": 1, "c": 200, "w": "received", "m": "A1"}
