"""Bringing the ledger up to date with Jira before anything is created: the ledger is a cache, never the truth.

How a ledger knows it may be behind (the decision, also in the README):
- The ledger keeps a cursor `jira:complete`: the time up to which it knows every issue that carries sh2jira's
  label. A ledger without it (a new or lost file, or one written by a version before this) is rebuilt in full at
  the start of the cycle: one paginated search over the label, asking only for what the ledger mirrors.
- Before the first create of a cycle, one search asks Jira for its newest sh2jira issue (1 result). If the ledger
  knows it, nothing was created behind its back and the cursor moves on. If not (a ledger restored from an old
  copy, or another instance with its own ledger created issues since), the issues created since the cursor are read
  and adopted. A cycle that creates nothing costs no extra call; one that creates costs one search.
- An untracked finding whose link-back (`sh2jira_issue`) names an issue is adopted when that issue carries the
  finding's own label (read by key, so Jira's search lag does not hide it); a value typed into the console is
  never trusted on its own.
- The per-cycle Jira-side search (issues updated since the last one) adopts any sh2jira issue it meets that the
  ledger does not know, at no extra cost.
Jira Cloud's search is eventually consistent: an issue created by another instance less than
`jira.search_lag_seconds` ago may not be seen yet. That window is why the cursor trails the clock by the lag, and why
several replicas belong on one shared ledger.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from .jira_sink import JiraSink
from .ledger import Entry, Ledger
from .plan import IDENTITY_PROPERTY, MANAGED_LABEL, Create, linked_issue
from .rebuild import REBUILD_FIELDS, TrackedIssue, adoptions, entry_from_issue, managed_jql, parse_issue
from .securityhub import iso, parse_iso

log = logging.getLogger(__name__)

CURSOR = "jira:complete"
_CHUNK = 500  # issues adopted per ledger transaction during a rebuild


class CatchUp:
    """Adopts into the ledger what Jira holds and the ledger does not know."""

    def __init__(self, sink: JiraSink, ledger: Ledger, *, now: Callable[[], datetime], lag: timedelta,
                 link_back: bool = True) -> None:
        self.sink = sink
        self.ledger = ledger
        self.link_back = link_back  # an adopted create intent still needs its link-back written
        self.now = now
        self.lag = lag
        self.checked = False  # the newest-issue check ran this cycle
        self.adopted = 0  # entries adopted this cycle
        self.searches = 0
        self.none_since: datetime | None = None  # this cycle's full rebuild found no sh2jira issue at that time

    def start_cycle(self) -> int:
        """At the start of a cycle: a full rebuild when the ledger has never been brought up to date."""
        self.adopted = 0
        self.none_since = None
        self.checked = self.ledger.cursor(CURSOR) is None  # a rebuild now makes this cycle's check needless
        return self.rebuild(None) if self.checked else 0

    def before_create(self, creates: Sequence[Create], scope: str) -> int:
        """Called with a page's planned creates: adopts what Jira already has for them. Returns how many entries
        were adopted (the page must then be planned again)."""
        adopted = 0
        if not self.checked:
            self.checked = True
            adopted += self._check_newest()
        claims = [c for c in creates if linked_issue(c.finding)]
        if claims:
            adopted += self._adopt_claims(claims, scope)
        return adopted

    def adopt_found(self, raw_issues: Iterable[Mapping[str, Any]]) -> int:
        """Adopt the sh2jira issues among `raw_issues` (a search result) that the ledger does not know."""
        issues = [i for i in (parse_issue(r) for r in raw_issues) if i is not None]
        if not issues:
            return 0
        known_keys = self.ledger.by_issue(i.key for i in issues)
        unknown = [i for i in issues if i.key not in known_keys]
        return self._adopt(unknown) if unknown else 0

    # -- the searches ------------------------------------------------------------------------------------------
    def rebuild(self, created_within_minutes: int | None) -> int:
        """Read sh2jira's issues (all, or those created in the last N minutes), oldest first, and adopt every one the
        ledger does not know. Then the ledger is complete up to now minus the search lag."""
        started = self.now()
        jql = managed_jql(created_within_minutes)
        what = "all of sh2jira's issues" if created_within_minutes is None else \
            f"sh2jira's issues created in the last {created_within_minutes} min"
        log.info("bringing the ledger up to date from Jira: reading %s", what)
        self.searches += 1
        adopted, batch, seen = 0, [], 0
        for raw in self.sink.search(jql, fields=REBUILD_FIELDS, properties=(IDENTITY_PROPERTY,)):
            seen += 1
            issue = parse_issue(raw)
            if issue is not None:
                batch.append(issue)
            if len(batch) >= _CHUNK:
                adopted += self._adopt(batch)
                batch = []
        adopted += self._adopt(batch)
        self.ledger.set_cursor(CURSOR, iso(started - self.lag))
        if created_within_minutes is None and not seen:
            self.none_since = started  # a first install: nothing in Jira for the cycle's closure search to find
        log.info("ledger brought up to date from Jira: %d issue(s) adopted", adopted)
        return adopted

    def _check_newest(self) -> int:
        """One search for Jira's newest sh2jira issue: is the ledger behind?"""
        started = self.now()
        mark = parse_iso(self.ledger.cursor(CURSOR) or "")
        if mark is None:
            return self.rebuild(None)
        self.searches += 1
        found = self.sink.search(f"labels = {MANAGED_LABEL} ORDER BY created DESC", fields=("labels",), page_size=1)
        newest = next(found, None)  # the first page only
        if newest is None or self.ledger.by_issue([str(newest.get("key"))]):
            self.ledger.set_cursor(CURSOR, iso(started - self.lag))
            return 0
        minutes = math.ceil((started - mark).total_seconds() / 60) + 1
        log.warning("Jira holds sh2jira issue %s that the ledger does not know (restored from an old copy, or "
                    "another instance with its own ledger?): reading the issues created since %s",
                    newest.get("key"), iso(mark), extra={"issue_key": str(newest.get("key"))})
        return self.rebuild(minutes)

    def _adopt_claims(self, claims: Sequence[Create], scope: str) -> int:
        """Findings whose link-back names an issue: adopt the issue when it carries the finding's label."""
        adopted: list[Entry] = []
        for create in claims:
            key = linked_issue(create.finding)
            raw = self.sink.issue(key, REBUILD_FIELDS, (IDENTITY_PROPERTY,))
            issue = parse_issue(raw) if raw else None
            if issue is None or issue.digest != create.finding.key.digest:
                log.warning("finding %s names issue %s, which does not carry its label %s: not adopted",
                            create.finding.id, key, create.finding.key.label,
                            extra={"finding_id": create.finding.id, "issue_key": key})
                continue
            known = self.ledger.get([issue.digest]).get(issue.digest)
            entry = entry_from_issue(issue, known)
            adopted.append(entry.with_(finding_id=create.finding.id, product_arn=create.finding.key.product_arn,
                                       region=entry.region or scope))
            log.info("adopted %s for finding %s (named by its link-back)", key, create.finding.id,
                     extra={"finding_id": create.finding.id, "issue_key": key})
        self.ledger.put(adopted)
        self.adopted += len(adopted)
        return len(adopted)

    def _adopt(self, issues: list[TrackedIssue]) -> int:
        if not issues:
            return 0
        known = self.ledger.get({i.digest for i in issues})
        writes = adoptions(issues, known, link_back=self.link_back)
        self.ledger.put(writes)
        for e in writes:
            log.info("adopted %s from Jira into the ledger", e.issue_key, extra={"issue_key": e.issue_key})
        self.adopted += len(writes)
        return len(writes)


__all__ = ["CURSOR", "CatchUp"]
