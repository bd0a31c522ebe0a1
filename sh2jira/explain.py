"""`sh2jira explain`: for each finding in a file, the rule that matched and why, and the issue exactly as it
would be written. Reads no service and writes nothing, so admins can try a rulebook on sample findings.

The verdict is not worked out here: it is `plan.plan_page`'s, the code `run` uses, asked about the finding as
if it were new (an empty ledger). So a filter, a "nothing to fix" state (archived, PASSED, RESOLVED) and a rule
decide here exactly as they decide in `run`, and the line says which one did. The only step `plan_page` does
not take is the server-side part of `rulebook.filters` (product, account, region), which Security Hub applies
before sh2jira reads anything, nor the choice of regions and accounts; explain checks those with the values `run`
uses (`securityhub.regions` / `accounts`, and the filters `coarse_filters` builds).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TextIO

from . import logs
from .finding import Finding, FindingError, unwrap_documents
from .ocsf import is_ocsf, parse_any
from .plan import Plan, plan_page
from .rulebook import Rulebook, coarse_filters, explain

# GetFindings filter attribute → the ASFF field it compares (EQUALS, values OR'ed).
_FILTERED_FIELDS = {"ProductName": "ProductName", "AwsAccountId": "AwsAccountId", "Region": "Region"}
_FILTER_KEYS = {"ProductName": "product", "AwsAccountId": "account", "Region": "region"}


def _filtered_value(finding: Finding, attribute: str) -> Any:
    """The value a server-side filter compares: the ASFF field itself, or what GetFindingsV2 compares instead
    (metadata.product.name, cloud.account.uid, cloud.region: securityhub_v2.translate_filters)."""
    if is_ocsf(finding.raw):
        return {"ProductName": finding.product_name, "AwsAccountId": finding.account_id,
                "Region": finding.region}[attribute]
    return finding.raw.get(_FILTERED_FIELDS[attribute])


def not_read_reason(cfg: Any, finding: Finding) -> str:
    """Why `run` would never read this finding ('' when it would): outside the regions or accounts it reads, or
    excluded by a server-side filter."""
    sh = cfg.securityhub
    if not sh.aggregation and finding.region not in sh.regions:
        return f"region {finding.region or '(none)'} is not in securityhub.regions (run never reads it)"
    accounts = [a.account_id for a in sh.accounts]
    if accounts and finding.account_id not in accounts:
        return f"account {finding.account_id} is not in securityhub.accounts (run never reads it)"
    rulebook: Rulebook = cfg.rulebook
    for attribute, conditions in coarse_filters(rulebook).items():
        value = _filtered_value(finding, attribute)
        if value not in {c["Value"] for c in conditions}:
            return (f"{attribute} {value!r} is not in rulebook.filters.{_FILTER_KEYS[attribute]} "
                    "(a server-side filter: run never reads it)")
    return ""


def planned(cfg: Any, finding: Finding, now: datetime | None = None) -> tuple[str, Plan]:
    """What `run` plans for this finding as a new one once it is read (at `now`, the clock by default): its dry-run
    line, and the plan."""
    plan = plan_page([finding], cfg.rulebook, {}, {}, link_back=cfg.securityhub.link_back,
                     now=datetime.now(UTC) if now is None else now)
    if plan.creates:
        c = plan.creates[0]
        return (f"CREATE [{c.draft.project}/{c.draft.issue_type}/{c.draft.priority}] {c.draft.summary}"
                f"  (finding {c.finding.id})"), plan
    if plan.skips:
        s = plan.skips[0]
        return f"SKIP   {s.finding.id}: {s.reason}", plan
    if plan.waits:
        w = plan.waits[0]
        return f"WAIT   {w.finding.id}: {w.reason}", plan
    raise AssertionError("a new finding is always created or skipped")  # pragma: no cover


def verdict(cfg: Any, finding: Finding) -> str:
    """The line `run --dry-run` prints for this finding as a new one (NOT READ: it prints none)."""
    reason = not_read_reason(cfg, finding)
    return f"NOT READ {finding.id}: {reason}" if reason else planned(cfg, finding)[0]


def explain_finding(cfg: Any, finding: Finding, out: TextIO) -> None:
    print(explain(cfg.rulebook, finding), file=out)
    reason = not_read_reason(cfg, finding)
    line, plan = planned(cfg, finding)
    if reason:
        print(f"verdict (as run decides it for a new finding): NOT READ {finding.id}: {reason}", file=out)
        print(f"  were it read: {line}", file=out)
    else:
        print(f"verdict (as run decides it for a new finding): {line}", file=out)
    if not plan.creates:
        return
    draft = plan.creates[0].draft
    issue = {"project": draft.project, "issuetype": draft.issue_type, "summary": draft.summary,
             "priority": draft.priority, "labels": list(draft.labels), "components": list(draft.components),
             "assignee": draft.assignee, **({"duedate": draft.due_date} if draft.due_date else {}),
             **dict(draft.custom_fields)}
    print("  issue fields:", file=out)
    for text in json.dumps(issue, indent=2, ensure_ascii=False).splitlines():
        print(f"    {text}", file=out)
    print("  description (Jira wiki markup):", file=out)
    for text in draft.description.splitlines():
        print(f"    | {text}", file=out)


def explain_file(cfg: Any, path: str, out: TextIO) -> int:
    """Explain every finding in a JSON file; exit 0 when all parsed, 2 when the file or a finding is bad (each
    bad finding is reported on stderr and the others are still explained)."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        logs.emit("error", f"{path}: cannot read findings: {exc.strerror or exc}")
        return 2
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        logs.emit("error", f"{path}: cannot read findings: not JSON ({exc})")
        return 2
    status = 0
    for i, raw in enumerate(unwrap_documents(doc)):
        if i:
            print(file=out)
        try:
            explain_finding(cfg, parse_any(raw), out)  # ASFF, OCSF, or either's EventBridge event
        except FindingError as exc:
            logs.emit("error", f"{path}: finding #{i}: {exc}")
            status = 2
    return status
