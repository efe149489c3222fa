"""Notification ids carry their creation time, so a time window is one partition-key range."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pushfuncs.storage.notifications import id_time, id_time_prefix, new_notification_id


def test_ids_are_32_hex_digits_and_unique() -> None:
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    ids = {new_notification_id(now) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_ids_sort_by_creation_time_and_tell_it() -> None:
    start = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    moments = [start + timedelta(milliseconds=n) for n in (0, 1, 999, 60_000, 86_400_000)]
    ids = [new_notification_id(m) for m in moments]
    assert ids == sorted(ids)
    assert [id_time(i) for i in ids] == moments


def test_a_window_is_the_key_range_between_its_prefixes() -> None:
    start = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    inside = new_notification_id(start + timedelta(seconds=30))
    after = new_notification_id(start + timedelta(minutes=1))
    lo, hi = id_time_prefix(start), id_time_prefix(start + timedelta(minutes=1))
    assert lo <= inside < hi
    assert not after < hi


def test_ids_of_another_shape_have_no_time() -> None:
    assert id_time("not-an-id") is None
