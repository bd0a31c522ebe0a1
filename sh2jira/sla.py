"""Time in the rulebook: `sla:` durations, an issue's due date, and when a young finding comes of age.

A security team measures an SLA from when the problem was first seen, not from when a ticket happened to be made,
so both the due date and `min_age` count from the finding's FirstObservedAt (its CreatedAt when the provider
sends none). Everything here is pure: the caller passes `now`, so the planner stays testable without a clock.

Decided, because the issue is silent on it:
- The due date is the UTC calendar date on which the SLA runs out (Jira's `duedate` is a date without time).
- It is set once, at create, and an SLA clock does not restart: a later re-evaluation never moves it later (a
  lower severity, a rule change, a re-import). It moves *earlier* when the finding now gets an earlier date (its
  severity rose, or it now matches a rule with a shorter SLA, such as an exploit becoming available), with a
  comment that says so (`kept_due`).
- A finding with neither FirstObservedAt nor CreatedAt has no age: it gets no due date and does not wait.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .finding import Finding, parse_time

UNITS = {"d": "days", "h": "hours", "m": "minutes"}
DURATION_PATTERN = r"^([0-9]+[dhm])+$"
_DURATION = re.compile(DURATION_PATTERN)
_PART = re.compile(r"([0-9]+)([dhm])")
_MAX = timedelta(days=3650)  # ten years: a longer SLA is a typo, and it keeps the date arithmetic in range


def duration_problem(text: str) -> str | None:
    """What is wrong with a duration like `7d`, `36h`, `90m` or `1d12h` (None when it is fine)."""
    if not _DURATION.match(text):
        return (f"{text!r} is not a duration: write whole numbers with a unit, d (days), h (hours) or m (minutes), "
                "like 7d, 36h, 90m or 1d12h")
    if parse_duration(text) > _MAX:
        return f"{text!r} is longer than ten years"
    return None


def parse_duration(text: str) -> timedelta:
    """`7d` → 7 days; raises ValueError naming the value when it is not a duration."""
    if not _DURATION.match(text):
        raise ValueError(duration_problem(text))
    total = timedelta()
    for number, unit in _PART.findall(text):
        total += timedelta(**{UNITS[unit]: int(number)})
    return total


def show(span: timedelta) -> str:
    """A duration the way the rulebook writes it (`1d12h`), for traces and comments."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    text = "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return text or "0m"


def observed_since(finding: Finding) -> datetime | None:
    """When the finding was first seen: FirstObservedAt, else CreatedAt, else None."""
    return parse_time(finding.first_observed_at) or parse_time(finding.created_at)


def due_date(finding: Finding, sla: timedelta) -> str:
    """The Jira due date (YYYY-MM-DD, UTC) for this SLA, counted from first seen; '' when the age is unknown."""
    since = observed_since(finding)
    return "" if since is None else (since + sla).astimezone(UTC).date().isoformat()


def of_age_at(finding: Finding, min_age: timedelta) -> datetime | None:
    """When the finding will have been active for `min_age` (None when its age is unknown)."""
    since = observed_since(finding)
    return None if since is None else since + min_age


def waits_until(finding: Finding, min_age: timedelta | None, now: datetime) -> datetime | None:
    """The time a finding too young to ticket comes of age, or None when it may be ticketed now."""
    if not min_age:
        return None
    ripe = of_age_at(finding, min_age)
    return ripe if ripe is not None and ripe > now else None


def kept_due(current: str, wanted: str) -> str:
    """The due date after a re-evaluation: the one already set, unless `wanted` is earlier (never later)."""
    if not current:
        return current  # not dated by sh2jira: a person's date (or none) is not overwritten
    return wanted if wanted and wanted < current else current


def stamp(ts: datetime) -> str:
    """A UTC time for logs, skip reasons and `explain`."""
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
