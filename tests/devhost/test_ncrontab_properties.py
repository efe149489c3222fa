"""Property tests of the NCRONTAB scheduler: the parser against field sets built independently,
and next occurrences against a plain walk over days, hours, minutes and seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devhost.ncrontab import CronSchedule

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

FIELD_RANGES = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


@st.composite
def field_texts(draw: st.DrawFn, low: int, high: int) -> tuple[str, set[int]]:
    """One field as text, with the set of values it stands for."""
    kind = draw(st.sampled_from(["star", "star-step", "value", "range", "range-step", "value-step", "list"]))
    if kind == "star":
        return "*", set(range(low, high + 1))
    if kind == "star-step":
        step = draw(st.integers(1, high - low + 1))
        return f"*/{step}", set(range(low, high + 1, step))
    if kind == "list":
        values = draw(st.sets(st.integers(low, high), min_size=1, max_size=6))
        return ",".join(str(v) for v in sorted(values)), values
    first = draw(st.integers(low, high))
    if kind == "value":
        return str(first), {first}
    if kind == "value-step":
        step = draw(st.integers(1, high - low + 1))
        return f"{first}/{step}", set(range(first, high + 1, step))
    last = draw(st.integers(first, high))
    if kind == "range":
        return f"{first}-{last}", set(range(first, last + 1))
    step = draw(st.integers(1, high - low + 1))
    return f"{first}-{last}/{step}", set(range(first, last + 1, step))


@st.composite
def expressions(draw: st.DrawFn) -> tuple[str, list[set[int]]]:
    fields = [draw(field_texts(low, high)) for low, high in FIELD_RANGES]
    return " ".join(text for text, _ in fields), [values for _, values in fields]


def walk_to_next(sets: list[set[int]], moment: datetime) -> datetime | None:
    seconds, minutes, hours, days, months, weekdays = (sorted(s) for s in sets)
    start = moment.replace(tzinfo=None)
    day = start.date()
    while day.year <= start.year + 30:
        if day.month in months and day.day in days and (day.weekday() + 1) % 7 in weekdays:
            for hour in hours:
                for minute in minutes:
                    for second in seconds:
                        candidate = datetime(day.year, day.month, day.day, hour, minute, second)
                        if candidate > start:
                            return candidate.replace(tzinfo=UTC)
        day += timedelta(days=1)
    return None


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@hypothesis.given(expressions())
def test_parser_matches_the_field_sets(case: tuple[str, list[set[int]]]) -> None:
    expression, sets = case
    schedule = CronSchedule.parse(expression)
    parsed = [schedule.seconds, schedule.minutes, schedule.hours, schedule.days, schedule.months, schedule.days_of_week]
    assert [set(values) for values in parsed] == sets


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(expressions(), moments)
def test_next_occurrence_matches_a_plain_walk(case: tuple[str, list[set[int]]], moment: datetime) -> None:
    expression, sets = case
    assert CronSchedule.parse(expression).next_after(moment) == walk_to_next(sets, moment)


@hypothesis.given(expressions(), moments)
def test_next_occurrence_is_later_and_matches_every_field(case: tuple[str, list[set[int]]], moment: datetime) -> None:
    expression, _ = case
    schedule = CronSchedule.parse(expression)
    found = schedule.next_after(moment)
    hypothesis.assume(found is not None)
    assert found is not None and found > moment and found.microsecond == 0
    assert found.second in schedule.seconds and found.minute in schedule.minutes
    assert found.hour in schedule.hours and found.day in schedule.days and found.month in schedule.months
    assert (found.weekday() + 1) % 7 in schedule.days_of_week
