"""The NCRONTAB parser and scheduler, and TimeSpan schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from devhost.ncrontab import CronSchedule, IntervalSchedule, ScheduleError, parse_schedule
from devhost.timespan import parse_timespan


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("* * * * * *", "2026-03-01T12:00:00", "2026-03-01T12:00:01"),
        ("0 */5 * * * *", "2026-03-01T12:03:10", "2026-03-01T12:05:00"),
        ("0 */5 * * * *", "2026-03-01T12:55:00", "2026-03-01T13:00:00"),
        ("0 0 * * * *", "2026-12-31T23:30:00", "2027-01-01T00:00:00"),
        ("5/15 * * * * *", "2026-03-01T12:00:06", "2026-03-01T12:00:20"),
        ("10-20/5 * * * * *", "2026-03-01T12:00:16", "2026-03-01T12:00:20"),
        ("1,2,3 0 0 * * *", "2026-03-01T00:00:02", "2026-03-01T00:00:03"),
        ("0 30 9 * * MON-FRI", "2026-11-21T10:00:00", "2026-11-23T09:30:00"),  # Saturday -> Monday
        ("0 30 9 * * 1-5", "2026-11-23T09:30:00", "2026-11-24T09:30:00"),  # strictly after
        ("0 0 0 1 JAN,jul *", "2026-02-01T00:00:00", "2026-07-01T00:00:00"),
        ("0 0 0 1 january *", "2026-02-01T00:00:00", "2027-01-01T00:00:00"),
        ("0 0 12 * * sun", "2026-11-23T00:00:00", "2026-11-29T12:00:00"),
        ("0 0 12 * * Saturday", "2026-11-23T00:00:00", "2026-11-28T12:00:00"),
        ("0 0 0 13 * FRI", "2026-01-01T00:00:00", "2026-02-13T00:00:00"),  # day AND weekday
        ("0 0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("0 0 0 31 * *", "2026-04-01T00:00:00", "2026-05-31T00:00:00"),
        ("0 0 */6 * * *", "2026-03-01T05:59:59", "2026-03-01T06:00:00"),
        ("  0   0  0  *  *  *  ", "2026-03-01T00:00:00", "2026-03-02T00:00:00"),
    ],
)
def test_next_occurrence(expression: str, after: str, expected: str) -> None:
    assert CronSchedule.parse(expression).next_after(at(after)) == at(expected)


def test_sub_second_moment_rounds_to_the_next_whole_second() -> None:
    schedule = CronSchedule.parse("* * * * * *")
    assert schedule.next_after(at("2026-03-01T12:00:00.999999")) == at("2026-03-01T12:00:01")


def test_other_time_zones_are_converted_to_utc() -> None:
    moment = datetime(2026, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert CronSchedule.parse("0 0 * * * *").next_after(moment) == at("2026-03-01T13:00:00")


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CronSchedule.parse("* * * * * *").next_after(datetime(2026, 3, 1))


def test_impossible_schedule_never_fires() -> None:
    assert CronSchedule.parse("0 0 0 31 2 *").next_after(at("2026-01-01T00:00:00")) is None


def test_parsed_fields() -> None:
    schedule = CronSchedule.parse("*/20 1-3 0,12 1 */6 MON,wed")
    assert schedule.seconds == (0, 20, 40)
    assert schedule.minutes == (1, 2, 3)
    assert schedule.hours == (0, 12)
    assert schedule.days == (1,)
    assert schedule.months == (1, 7)
    assert schedule.days_of_week == (1, 3)


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",  # five fields: the host needs six
        "* * * * * * *",
        "60 * * * * *",
        "* 60 * * * *",
        "* * 24 * * *",
        "* * * 0 * *",
        "* * * 32 * *",
        "* * * * 13 *",
        "* * * * * 7",  # NCrontab's day-of-week stops at 6
        "*/0 * * * * *",
        "*/x * * * * *",
        "5-1 * * * * *",
        "? * * * * *",
        "* * * * FOO *",
        "* * * * JA *",  # names need three letters
        "* * * * * MON-",
        "1,,2 * * * * *",
        "",
    ],
)
def test_invalid_expressions(expression: str) -> None:
    with pytest.raises(ScheduleError):
        CronSchedule.parse(expression)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:05:00", timedelta(minutes=5)),
        ("01:30", timedelta(hours=1, minutes=30)),
        ("00:00:00.5", timedelta(milliseconds=500)),
        ("1.02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("2", timedelta(days=2)),
        ("-00:00:01", timedelta(seconds=-1)),
    ],
)
def test_timespans(text: str, expected: timedelta) -> None:
    assert parse_timespan(text) == expected


@pytest.mark.parametrize("text", ["24:00:00", "00:60:00", "00:00:60", "5s", "1:2:3:4", "", "00:00:00.12345678"])
def test_invalid_timespans(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timespan(text)


def test_schedule_falls_back_to_a_timespan() -> None:
    schedule = parse_schedule("00:00:30")
    assert schedule == IntervalSchedule(timedelta(seconds=30))
    assert schedule.next_after(at("2026-03-01T12:00:00")) == at("2026-03-01T12:00:30")


def test_schedule_prefers_ncrontab() -> None:
    assert isinstance(parse_schedule("0 0 * * * *"), CronSchedule)


@pytest.mark.parametrize("text", ["00:00:00", "-00:01:00", "not a schedule"])
def test_schedules_that_are_neither(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(text)
