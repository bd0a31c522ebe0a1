"""`sh2jira preview -c CONFIG --rulebook NEW.yaml`: what a rulebook change would do, before it is made.

The findings are read again from Security Hub, read-only, because that is the truest "as last seen" there is:
the ledger keeps what was written, not the findings. Per scope it reads the findings changed in the look-back
window (`first_run_lookback_days`, or since the next run's cursor when that is older; pages of 100) under the
server-side filters of both rulebooks, so it sees every finding the next run reads, then by id the
open tracked findings the window did not bring (CSPM: 20 ids per GetFindings call; V2: 200 per query). So a
preview costs `findings in the window / 100 + older open issues / 20` GetFindings calls per account and region
(measured: 500 open issues in the window, 5 calls), paced like a cycle's, and nothing else: no Jira call, no
write to Security Hub, and the ledger is copied into memory through a read-only connection (a SQLite file;
DynamoDB is only read) and planned on through an overlay (overlay.py), so not one byte of it changes. Both
plans come from the planner `run` uses (rulediff.py).

A run applies a rulebook to a finding when it reads the finding: the next run reads the findings changed since
its cursor, so an item whose finding has not changed since is marked "applies when the finding next changes"
(`next_run: false`). Closed issues, and findings the ledger tracks as being created, are not listed. The plan
rests on the ledger as it is (Jira is not asked): a ledger behind Jira makes the next run adopt, not create.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from .app import open_hub, open_ledger, open_sources, source_scopes
from .config import Config
from .explain import not_read_reason
from .finding import Finding, FindingError
from .groups import needed
from .ledger import OPEN, Ledger
from .ledgers.sqlite import SqliteLedger
from .ocsf import parse_any
from .overlay import OverlayLedger
from .plan import alias_of
from .rulebook import Rulebook, coarse_filters
from .rulediff import CHANGE, CREATE, JOIN, KEEP, REROUTE, RESUME, SKIP, UNREAD, Item, Preview, compare
from .securityhub import ScopeUnavailable, changed_since_filters, parse_iso

log = logging.getLogger(__name__)


def run_preview(old: Config, new: Config, out: TextIO, *, as_json: bool = False, name: str = "",
                session: Any = None, now: datetime | None = None) -> int:
    """Read, compare, print. Exit 0 (also when some scope could not be read: it is named in the output), 1 when
    no scope could be read."""
    now = now or datetime.now(UTC)
    ledger = _read_only_ledger(old, session)
    try:
        hub = open_hub(old, session, check=False)
        sources = open_sources(old, hub, ledger)
        preview = Preview()
        errors: list[str] = []
        scopes = source_scopes(old)
        for scope in scopes:
            try:
                preview.extend(_preview_scope(old, new, sources, ledger, scope, scopes[0], now))
            except ScopeUnavailable as exc:
                errors.append(str(exc))
        calls = sum(n for op, n in sources.calls.items() if op.startswith("get_findings"))
    finally:
        ledger.close()
    if errors and len(errors) == len(scopes):
        for e in errors:
            log.error("%s", e)
        return 1
    print_preview(preview, out, as_json=as_json, name=name, calls=calls, errors=errors)
    return 0


def _read_only_ledger(cfg: Config, session: Any) -> Ledger:
    """The ledger behind an overlay (every write stays in memory). A SQLite file is copied into memory through a
    read-only connection first, so not even its header changes and a running sync is not held up."""
    path = Path(cfg.ledger.path)
    if cfg.ledger.backend == "sqlite" and path.exists():
        return OverlayLedger(SqliteLedger.snapshot(path))  # type: ignore[return-value]
    return open_ledger(cfg, dry_run=True, session=session)


def _preview_scope(old: Config, new: Config, hub: Any, ledger: Ledger, scope: str, first: str,
                   now: datetime) -> Preview:
    cursor = parse_iso(ledger.cursor(f"findings:{scope}") or "")
    since = cursor - timedelta(minutes=old.securityhub.overlap_minutes) if cursor else None
    start = now - timedelta(days=old.securityhub.first_run_lookback_days)
    findings = list(_read(old, new, hub, ledger, scope, first, min(start, since or start), now))
    by_key = ledger.get(f.key.digest for f in findings)
    # The group entries either plan needs, as the run reads them (group_sync.with_groups): members' groups, and
    # the groups untracked findings would join.
    wanted = needed(findings, by_key, [old.rulebook, new.rulebook])
    by_key = {**by_key, **ledger.get(wanted)} if wanted else by_key
    by_alias = ledger.by_alias(a for f in findings if (a := alias_of(f)))

    def read_next(f: Finding) -> bool:
        changed = parse_iso(f.updated_at)
        return since is None or changed is None or changed >= since

    def not_read(rulebook: Rulebook, f: Finding) -> str:
        return not_read_reason(new if rulebook is new.rulebook else old, f)

    return compare(findings, old.rulebook, new.rulebook, by_key, by_alias, link_back=old.securityhub.link_back,
                   suppress_resolutions=old.closure.suppress_resolutions, not_read=not_read, read_next=read_next,
                   now=now)


def _read(old: Config, new: Config, hub: Any, ledger: Ledger, scope: str, first: str, start: datetime,
          now: datetime) -> Iterator[Finding]:
    """The findings changed since `start` (the look-back window, or the next run's own read window when that
    reaches further back) under each rulebook's server-side filters, then the scope's open tracked findings the
    window did not bring, by id; each finding once. A malformed finding is logged and left out."""
    seen: set[str] = set()
    wanted = []
    for rulebook in (new.rulebook, old.rulebook):
        filters = changed_since_filters(coarse_filters(rulebook), start, now)
        if filters not in wanted:
            wanted.append(filters)
    for filters in wanted:
        for page in hub.pages(scope, filters):
            yield from _parsed(page, seen)
    missing = [(e.finding_id, e.product_arn) for e in ledger.in_state(OPEN)
               if (e.region or first) == scope and e.finding_id and e.key not in seen]
    if missing:
        yield from _parsed(hub.by_ids(scope, missing), seen)


def _parsed(page: list[dict[str, Any]], seen: set[str]) -> Iterator[Finding]:
    for raw in page:
        try:
            finding = parse_any(raw)
        except FindingError as exc:
            log.warning("skipping a malformed finding: %s", exc, extra={"finding_id": exc.finding_id})
            continue
        if finding.key.digest not in seen:
            seen.add(finding.key.digest)
            yield finding


# -- output --------------------------------------------------------------------------------------------------

_LABELS = {CHANGE: "CHANGE ", REROUTE: "REROUTE", CREATE: "CREATE ", SKIP: "SKIP   ", RESUME: "RESUME ",
           UNREAD: "UNREAD ", JOIN: "JOIN   ", KEEP: "KEEP   "}


def _show(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _change(old: Any, new: Any) -> str:
    """old → new; for two lists what was added and removed (labels are long and mostly shared)."""
    if isinstance(old, list) and isinstance(new, list) and old and new:
        diff = [f"+{v}" for v in new if v not in old] + [f"-{v}" for v in old if v not in new]
        return " ".join(diff) or "reordered"
    return f"{_show(old)} → {_show(new)}"


def line(item: Item) -> str:
    """One item as text: what it is, what changes (old → new, and whether the next run writes it), and why."""
    head = f"{_LABELS[item.kind]} {item.issue_key or '(new)'}"
    if item.kind == CREATE:
        w = item.writes
        head += f" [{w.get('project')}/{w.get('issue_type')}/{w.get('priority')}] {w.get('summary', '')}"
    if item.kind == CHANGE and item.group:
        head += " (group issue)"
    parts = []
    if item.members:
        shown = ", ".join(item.members[:5]) + (f" and {len(item.members) - 5} more" if len(item.members) > 5 else "")
        parts.append(f"{'with' if item.kind == CREATE else 'joined by'} {len(item.members)} finding(s): {shown}")
    if item.kind in (REROUTE, SKIP, RESUME, UNREAD, JOIN, KEEP):
        parts.append(f"was {item.old}, now {item.new}")
    for c in item.changes:
        mark = "" if c.written or not item.issue_key else " (not written: kept on the existing issue)"
        parts.append(f"{c.field}: {_change(c.old, c.new)}{mark}")
    if item.writes.get("transition"):
        parts.append(f"{item.writes['transition']}d by the refresh")
    if item.writes.get("comment"):
        parts.append("with a comment")
    if item.note:
        parts.append(item.note)
    if not item.next_run:
        parts.append("applies when the finding next changes (the next run does not read it)")
    whole_group = bool(item.group) and (not item.finding_id or item.kind == CREATE)  # not one member's item
    about = f"group {item.group}" if whole_group else f"finding {item.finding_id}"
    return f"{head}  {'; '.join(parts)}  ({about})"


def summary(counts: dict[str, int]) -> str:
    return (f"{counts[CHANGE]} issue(s) change, {counts[REROUTE]} re-routed, {counts[CREATE]} to create "
            f"({counts['newly_ticketed']} newly ticketed), {counts[SKIP]} skipped ({counts['tracked_skipped']} "
            f"tracked issue(s) no longer edited), {counts[RESUME]} edited again, {counts[UNREAD]} no longer read"
            + (f", {counts['group_creates']} group issue(s) to create, {counts[JOIN]} finding(s) joining a group's "
               f"issue, {counts[KEEP]} kept on the issue they have (grouping)"
               if counts['group_creates'] or counts[JOIN] or counts[KEEP] else "")
            + f"; {counts['issue_writes']} existing issue(s) written by the next run")


def as_document(preview: Preview, *, name: str, calls: int, errors: list[str]) -> dict[str, Any]:
    items = [{"kind": i.kind, "finding_id": i.finding_id, "key": i.key, "issue_key": i.issue_key or None,
              "old": i.old, "new": i.new,
              "changes": [{"field": c.field, "old": c.old, "new": c.new, "written": c.written} for c in i.changes],
              "writes": dict(i.writes), "note": i.note, "next_run": i.next_run, "group": i.group or None,
              "members": list(i.members)} for i in preview.items]
    return {"rulebook": name, "counts": preview.counts(), "items": items, "get_findings_calls": calls,
            "scope_errors": errors, "written": False}


def print_preview(preview: Preview, out: TextIO, *, as_json: bool, name: str, calls: int, errors: list[str]) -> None:
    if as_json:
        print(json.dumps(as_document(preview, name=name, calls=calls, errors=errors), ensure_ascii=False), file=out)
        return
    order = {kind: n for n, kind in enumerate((CHANGE, REROUTE, RESUME, SKIP, UNREAD, KEEP, JOIN, CREATE))}
    for item in sorted(preview.items, key=lambda i: (order[i.kind], i.issue_key, i.finding_id)):
        print(line(item), file=out)
    for e in errors:
        print(f"NOT READ {e} (this scope is missing from the preview)", file=out)
    print(f"preview{f' of {name}' if name else ''}: {summary(preview.counts())}; {preview.read} finding(s) read "
          f"in {calls} GetFindings call(s); nothing written", file=out)
