"""Rule conditions as small registered functions: a name, a one-time `prepare`, a per-finding `test`.

Like Cloud Custodian's filters, adding a condition is one function here plus one field of the same name on
`rulebook.Match` (rulebook checks at import that the two agree). `prepare` runs once when the rulebook is
loaded (globs and regexes are compiled there), so `test` does no parsing per finding. Every test returns
whether it held and a short reason, which becomes the rulebook's trace.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .finding import Finding

Verdict = tuple[bool, str]


@dataclass(frozen=True)
class Matcher:
    """A named condition: `prepare` turns the config value into something fast, `test` checks a finding."""

    name: str
    prepare: Callable[[Any], Any]
    test: Callable[[Any, Finding], Verdict]


MATCHERS: dict[str, Matcher] = {}


def matcher(name: str, prepare: Callable[[Any], Any]) -> Callable[[Callable[[Any, Finding], Verdict]],
                                                                 Callable[[Any, Finding], Verdict]]:
    """Register a matcher under the `Match` field of the same name."""
    def register(test: Callable[[Any, Finding], Verdict]) -> Callable[[Any, Finding], Verdict]:
        MATCHERS[name] = Matcher(name, prepare, test)
        return test
    return register


Globs = tuple[tuple[str, re.Pattern[str]], ...]


# fnmatch's own bracket rule: `[`, an optional `!`, an optional `]` taken literally, then up to the next `]`.
# A `[` with no closing `]` is silently matched as a literal `[` (so `S3.[*` matches only ids that contain "[").
GLOB_PATTERN = r"^(?:[^\[]|\[!?\]?[^\]]*\])*$"
_GLOB_SHAPE = re.compile(GLOB_PATTERN)


def glob_problem(pattern: str) -> str | None:
    """What is wrong with an fnmatch glob, or None. A glob that would not match what it plainly says is refused
    when the rulebook is loaded, instead of quietly ticketing (or skipping) the wrong findings."""
    if _GLOB_SHAPE.match(pattern) is None:
        return (f"glob {pattern!r} has a '[' that is never closed, so it would match a literal '[': close the set "
                "(like [0-9]) or write [[] for a literal '['")
    try:
        rx = re.compile(fnmatch.translate(pattern))
    except re.error as exc:
        return f"glob {pattern!r} does not compile: {exc}"
    if "(?!)" in rx.pattern:  # fnmatch's translation of a set that can hold nothing, e.g. [z-a]
        return f"glob {pattern!r} has a character set that matches nothing (a reversed range like [z-a]?)"
    return None


def _globs(patterns: Sequence[str]) -> Globs:
    """fnmatch patterns, case-sensitive, compiled once."""
    return tuple((p, re.compile(fnmatch.translate(p))) for p in patterns)


def _glob_hit(globs: Globs, text: str) -> str | None:
    return next((p for p, rx in globs if rx.match(text)), None)


def _show(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _glob_matcher(name: str, what: str, value_of: Callable[[Finding], str]) -> None:
    @matcher(name, _globs)
    def test(globs: Globs, f: Finding) -> Verdict:
        value = value_of(f)
        hit = _glob_hit(globs, value)
        if hit is not None:
            return True, f"{what} {value!r} matches {hit!r}"
        return False, f"{what} {value!r} matches none of {_show([p for p, _ in globs])}"


@matcher("severity", tuple)
def _severity(labels: tuple[str, ...], f: Finding) -> Verdict:
    ok = f.severity_label in labels
    return ok, f"severity {f.severity_label} is {'' if ok else 'not '}one of {', '.join(labels)}"


_glob_matcher("product", "product", lambda f: f.product_name)
_glob_matcher("account", "account", lambda f: f.account_id)
_glob_matcher("region", "region", lambda f: f.region)


@matcher("resource_type", _globs)
def _resource_type(globs: Globs, f: Finding) -> Verdict:
    for resource in f.resources:
        hit = _glob_hit(globs, resource.type)
        if hit is not None:
            return True, f"resource type {resource.type!r} matches {hit!r}"
    have = ", ".join(r.type for r in f.resources) or "no resources"
    return False, f"no resource type ({have}) matches {_show([p for p, _ in globs])}"


def _tag_globs(tags: Mapping[str, str]) -> tuple[tuple[str, Globs], ...]:
    return tuple((key, _globs([value])) for key, value in tags.items())


@matcher("resource_tags", _tag_globs)
def _resource_tags(wanted: tuple[tuple[str, Globs], ...], f: Finding) -> Verdict:
    want_text = ", ".join(f"{k}={globs[0][0]}" for k, globs in wanted)
    for resource in f.resources:
        if all(k in resource.tags and _glob_hit(globs, resource.tags[k]) for k, globs in wanted):
            return True, f"resource {resource.id!r} has {want_text}"
    return False, f"no resource has all of {want_text}"


_glob_matcher("control_id", "control id", lambda f: f.control_id)


@matcher("compliance_status", tuple)
def _compliance_status(statuses: tuple[str, ...], f: Finding) -> Verdict:
    ok = f.compliance_status in statuses
    status = f.compliance_status or "(none)"
    return ok, f"compliance status {status} is {'' if ok else 'not '}one of {', '.join(statuses)}"


@matcher("type_prefix", tuple)
def _type_prefix(prefixes: tuple[str, ...], f: Finding) -> Verdict:
    for finding_type in f.types:
        hit = next((p for p in prefixes if finding_type.startswith(p)), None)
        if hit is not None:
            return True, f"type {finding_type!r} starts with {hit!r}"
    return False, f"no type ({'; '.join(f.types) or 'none'}) starts with {_show(prefixes)}"


@matcher("title", re.compile)
def _title(rx: re.Pattern[str], f: Finding) -> Verdict:
    ok = rx.search(f.title) is not None
    return ok, f"title {'matches' if ok else 'does not match'} /{rx.pattern}/"


# Vulnerability conditions (Inspector's `Vulnerabilities[]`, OCSF's `vulnerabilities[]`, mapped alike in
# `Finding.vulnerabilities`): a finding matches when any one of its vulnerabilities does. A rule with them can carry
# its own `sla:` to shorten the due date.
def _names(f: Finding) -> str:
    return ", ".join(v.id or "?" for v in f.vulnerabilities) or "none"


def _flagged(wanted: bool, f: Finding, flag: str, words: str) -> Verdict:
    """`wanted` true: some vulnerability has `flag`; false: none has it. The trace names the one that does."""
    hit = next((v for v in f.vulnerabilities if getattr(v, flag)), None)
    if hit is not None:
        return wanted, f"vulnerability {hit.id or '?'} {words}"
    return not wanted, f"no vulnerability ({_names(f)}) {words}"


@matcher("exploit_available", bool)
def _exploit_available(wanted: bool, f: Finding) -> Verdict:
    return _flagged(wanted, f, "exploit_available", "has an exploit available")


@matcher("known_exploited", bool)
def _known_exploited(wanted: bool, f: Finding) -> Verdict:
    return _flagged(wanted, f, "known_exploited", "is known to be exploited")


@matcher("epss_min", float)
def _epss_min(least: float, f: Finding) -> Verdict:
    scored = [v for v in f.vulnerabilities if v.epss is not None]
    hit = max(scored, key=lambda v: v.epss or 0.0, default=None)
    if hit is not None and (hit.epss or 0.0) >= least:
        return True, f"vulnerability {hit.id or '?'} has EPSS {hit.epss:g} >= {least:g}"
    best = f"the highest is {hit.epss:g}" if hit is not None else "no vulnerability has an EPSS score"
    return False, f"no EPSS score >= {least:g} ({best})"
