"""Timer schedules as the Functions host reads them: six-field NCRONTAB, or a TimeSpan interval.

NCRONTAB: `{second} {minute} {hour} {day} {month} {day-of-week}`, each field `*`, a value, a
range `a-b`, a step (`*/n`, `a-b/n`, `a/n` meaning a through the maximum), or a comma list of
those. Months and days of the week also take English names (`JAN`, `MON`, `Monday`).
Day-of-week runs 0-6 from Sunday. Unlike Vixie cron, NCrontab requires day-of-month AND
day-of-week to match when both are restricted. Times are UTC.
"""

from __future__ import annotations

import bisect
import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devhost.timespan import parse_timespan

_MONTH_NAMES = tuple(calendar.month_name[1:])
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
# (field name, minimum, maximum, names for minimum..maximum)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTH_NAMES),
    ("day-of-week", 0, 6, _DAY_NAMES),
)
# Feb 29 on a given weekday recurs within 28 years; past that a schedule never fires.
_SEARCH_YEARS = 30


class ScheduleError(ValueError):
    """The schedule expression is neither a valid NCRONTAB expression nor a TimeSpan."""


def _parse_value(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text.isdigit():
        value = int(text)
    elif names and len(text) >= 3 and text.isalpha():
        matches = [i for i, name in enumerate(names) if name.lower().startswith(text.lower())]
        if not matches:
            raise ScheduleError(f"{text!r} is not a {field} name")
        value = low + matches[0]
    else:
        raise ScheduleError(f"{text!r} is not a valid {field} value")
    if not low <= value <= high:
        raise ScheduleError(f"{field} value {value} is outside {low}-{high}")
    return value


def _parse_field(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> tuple[int, ...]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{item!r}: the step of a {field} must be a positive integer")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start_text, _, end_text = span.partition("-")
            first = _parse_value(start_text, field, low, high, names)
            last = _parse_value(end_text, field, low, high, names)
            if first > last:
                raise ScheduleError(f"{item!r}: the {field} range runs backwards")
        else:
            first = _parse_value(span, field, low, high, names)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return tuple(sorted(values))


def _next_in(values: tuple[int, ...], current: int) -> int | None:
    index = bisect.bisect_left(values, current)
    return values[index] if index < len(values) else None


@dataclass(frozen=True)
class CronSchedule:
    """A parsed six-field NCRONTAB expression."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        parts = expression.split()
        if len(parts) != len(_FIELDS):
            raise ScheduleError(
                f"{expression!r} has {len(parts)} fields; NCRONTAB needs 6: "
                "{second} {minute} {hour} {day} {month} {day-of-week}"
            )
        fields = [_parse_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        return cls(expression, *fields)

    def _day_matches(self, moment: datetime) -> bool:
        cron_weekday = (moment.weekday() + 1) % 7
        return moment.day in self.days and cron_weekday in self.days_of_week

    def next_after(self, moment: datetime) -> datetime | None:
        """The first occurrence strictly after `moment` (whole seconds, UTC), or None if there is none."""
        t = _as_naive_utc(moment).replace(microsecond=0) + timedelta(seconds=1)
        last_year = t.year + _SEARCH_YEARS
        while t.year <= last_year:
            month = _next_in(self.months, t.month)
            if month is None:
                t = datetime(t.year + 1, 1, 1)
                continue
            if month != t.month:
                t = datetime(t.year, month, 1)
            if not self._day_matches(t):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            hour = _next_in(self.hours, t.hour)
            if hour is None:
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            if hour != t.hour:
                t = t.replace(hour=hour, minute=0, second=0)
            minute = _next_in(self.minutes, t.minute)
            if minute is None:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if minute != t.minute:
                t = t.replace(minute=minute, second=0)
            second = _next_in(self.seconds, t.second)
            if second is None:
                t = t.replace(second=0) + timedelta(minutes=1)
                continue
            return t.replace(second=second, tzinfo=UTC)
        return None

    def __str__(self) -> str:
        return f"Cron: '{self.expression}'"


@dataclass(frozen=True)
class IntervalSchedule:
    """A constant interval (the TimeSpan form, e.g. `00:05:00`): each run is due one interval after `now`."""

    interval: timedelta

    def next_after(self, moment: datetime) -> datetime | None:
        return _as_naive_utc(moment).replace(tzinfo=UTC) + self.interval

    def __str__(self) -> str:
        return f"Interval: {self.interval}"


def parse_schedule(expression: str) -> CronSchedule | IntervalSchedule:
    """Read a timer schedule as the host does: NCRONTAB first, else a TimeSpan; ScheduleError if neither."""
    try:
        return CronSchedule.parse(expression)
    except ScheduleError as cron_error:
        try:
            interval = parse_timespan(expression)
        except ValueError:
            raise cron_error from None
        if interval <= timedelta(0):
            raise ScheduleError(f"{expression!r}: a TimeSpan schedule must be positive") from None
        return IntervalSchedule(interval)


def _as_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")
    return moment.astimezone(UTC).replace(tzinfo=None)
