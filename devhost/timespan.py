"""Parse .NET TimeSpan strings (`[-][d.]hh:mm[:ss[.fffffff]]` or `d`), as host.json and timers use them."""

from __future__ import annotations

import re
from datetime import timedelta

_TIMESPAN = re.compile(
    r"""^\s*(?P<sign>-)?
    (?:(?P<days>\d+)\.)?
    (?P<hours>\d{1,2}):(?P<minutes>\d{1,2})
    (?::(?P<seconds>\d{1,2})(?:\.(?P<fraction>\d{1,7}))?)?\s*$""",
    re.VERBOSE,
)
_DAYS_ONLY = re.compile(r"^\s*(?P<sign>-)?(?P<days>\d+)\s*$")


def parse_timespan(text: str) -> timedelta:
    """Parse a TimeSpan string the way .NET's invariant `TimeSpan.Parse` does; ValueError if invalid."""
    days_only = _DAYS_ONLY.match(text)
    if days_only:
        # .NET reads a bare integer as a number of days, not seconds.
        span = timedelta(days=int(days_only["days"]))
        return -span if days_only["sign"] else span
    match = _TIMESPAN.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a TimeSpan (expected [d.]hh:mm[:ss[.fffffff]])")
    hours, minutes = int(match["hours"]), int(match["minutes"])
    seconds = int(match["seconds"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{text!r} is not a TimeSpan: a component is out of range")
    fraction = (match["fraction"] or "").ljust(7, "0")
    span = timedelta(
        days=int(match["days"] or 0),
        hours=hours,
        minutes=minutes,
        seconds=seconds,
        microseconds=int(fraction) // 10,
    )
    return -span if match["sign"] else span
