"""Date values and date functions of JQL, evaluated in UTC.

Jira reads dates in the searching user's time zone; this stand-in's site time zone is UTC, so
``"2024-05-01"`` means 2024-05-01T00:00Z. Accepted literals follow JqlDateSupportImpl: the four absolute
formats, a period relative to now (``-5d``, ``4w 2d``, ``-1h 30m``; w/d/h/m units, a week is 7 days) and an
unquoted integer, which Jira takes as epoch milliseconds. Jira indexes dates to the minute, so comparisons
use minute precision (see ``to_minute``).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

VALID_FORMATS = ("Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', "
                 "or a period format e.g. '-5d', '4w 2d'.")
_ABSOLUTE = re.compile(r"(\d{4})([/-])(\d{1,2})\2(\d{1,2})(?: +(\d{1,2}):(\d{2}))?")
_PERIOD = re.compile(r"(-)?((?:\d+[wdhm] *)+)", re.IGNORECASE)
_PERIOD_PART = re.compile(r"(\d+)([wdhm])", re.IGNORECASE)
_UNIT_MINUTES = {"w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1}
_INCREMENT = re.compile(r"([+-]?)(\d+)([yMwdhm]?)")


def to_minute(moment: datetime) -> datetime:
    """The instant as Jira compares it: UTC, truncated to the minute (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def parse_date(text: str, now: datetime) -> datetime | None:
    """A JQL date string as an instant, or None when Jira would call it invalid."""
    value = text.strip()
    absolute = _ABSOLUTE.fullmatch(value)
    if absolute:
        year, _, month, day, hour, minute = absolute.groups()
        try:
            return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=UTC)
        except ValueError:
            return None
    period = _PERIOD.fullmatch(value)
    if period:
        minutes = sum(int(n) * _UNIT_MINUTES[u.lower()] for n, u in _PERIOD_PART.findall(period.group(2)))
        return now + timedelta(minutes=-minutes if period.group(1) else minutes)
    return None


def from_epoch_millis(millis: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)


def _add(moment: datetime, amount: int, unit: str) -> datetime:
    """Calendar arithmetic like java.util.Calendar.add: months and years clamp the day of the month."""
    if unit in ("y", "M"):
        months = moment.month - 1 + (amount * 12 if unit == "y" else amount)
        year, month = moment.year + months // 12, months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day)
    return moment + timedelta(minutes=amount * _UNIT_MINUTES[unit])


def _start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _end_of_day(now: datetime) -> datetime:
    return now.replace(hour=23, minute=59, second=59, microsecond=999999)


def _start_of_month(now: datetime) -> datetime:
    return _start_of_day(now).replace(day=1)


def _end_of_month(now: datetime) -> datetime:
    return _end_of_day(now).replace(day=calendar.monthrange(now.year, now.month)[1])


def _start_of_year(now: datetime) -> datetime:
    return _start_of_month(now).replace(month=1)


def _end_of_year(now: datetime) -> datetime:
    return _end_of_day(now).replace(month=12, day=31)


#: name (lower case) -> (boundary, natural unit of the optional increment)
_BOUNDARIES: dict[str, tuple[Callable[[datetime], datetime], str]] = {
    "startofday": (_start_of_day, "d"), "endofday": (_end_of_day, "d"),
    "startofmonth": (_start_of_month, "M"), "endofmonth": (_end_of_month, "M"),
    "startofyear": (_start_of_year, "y"), "endofyear": (_end_of_year, "y"),
}
DATE_FUNCTIONS = frozenset(_BOUNDARIES) | {"now"}


def call_date_function(name: str, args: tuple[str, ...], now: datetime) -> datetime | str:
    """Evaluate now()/startOfDay()/... in UTC; returns Jira's error message for bad arguments."""
    key = name.lower()
    if key == "now":
        if args:
            return f"Function '{name}' expected '0' arguments but received '{len(args)}'."
        return now
    boundary, natural_unit = _BOUNDARIES[key]
    if len(args) > 1:
        return f"Function '{name}' expected between '0' and '1' arguments but received '{len(args)}'."
    moment = boundary(now.astimezone(UTC))
    if args:
        increment = _INCREMENT.fullmatch(args[0].strip())
        if not increment:
            return (f"Duration for function '{name}' should have the format (+/-)n(yMwdm), e.g -1M for 1 "
                    "month earlier.")
        sign, amount, unit = increment.groups()
        moment = _add(moment, -int(amount) if sign == "-" else int(amount), unit or natural_unit)
    return moment


def date_of_function(name: str, display: str, args: tuple[str, ...], now: datetime,
                     messages: list[str]) -> datetime | None:
    """A JQL date function's value, or None with Jira's message appended (unknown function, bad arguments)."""
    if name.lower() not in DATE_FUNCTIONS:
        messages.append(f"Unable to find JQL function '{display}'.")
        return None
    result = call_date_function(name, args, now)
    if isinstance(result, str):
        messages.append(result)
        return None
    return result
