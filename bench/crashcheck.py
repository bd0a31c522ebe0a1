"""The crash test's verdict, read from the stand-ins' own state and the ledger, and its figures as text.

Expected issues come from the generator's answer (crashgen.Generated.ticketable), not from sh2jira's rules.
An issue belongs to a finding by its deterministic label `sh2jira-<digest>` (FindingKey.label).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from sh2jira.finding import Finding, FindingKey
from sh2jira.groups import group_of

from .crashlib import Harness, Run


@dataclass
class Verdict:
    findings: int
    ticketable: int
    issues: int
    duplicates: int  # issues beyond the first per finding
    missing_issues: int  # ticketable findings without an issue
    orphan_issues: int  # issues that belong to no ticketable finding
    missing_linkbacks: int  # ticketable findings not pointing at their one issue, or not NOTIFIED
    ledger_problems: int  # entries not open, still pending, or naming another issue than Jira has
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.missing_issues or self.orphan_issues or self.missing_linkbacks
                    or self.ledger_problems)


def own_label(doc: Mapping[str, Any]) -> str:
    return FindingKey(doc["ProductArn"], doc["Id"]).label


def group_label(doc: Mapping[str, Any]) -> str:
    """The label of the issue that carries a finding under crashlib.GROUPED_RULES: its control group's (groups.py),
    else its own."""
    gid = group_of(Finding.parse(doc), ("control",))
    return gid.label if gid is not None else own_label(doc)


def verify(h: Harness, label_of: Callable[[Mapping[str, Any]], str] = own_label) -> Verdict:
    """`label_of` names the label of the issue that must carry a finding: its own, or its group's (groups.py)."""
    ticketable = [g for g in h.generated if g.ticketable]
    carrier = {FindingKey(g.doc["ProductArn"], g.doc["Id"]).digest: label_of(g.doc) for g in ticketable}
    expected = {label_of(g.doc): g for g in ticketable}
    issues = h.jira_app.issues()
    by_label: dict[str, list[str]] = {}
    unlabelled = []
    for issue in issues:
        own = [lb for lb in issue["labels"] if lb.startswith("sh2jira-")]
        if not own:
            unlabelled.append(issue["key"])
        for lb in own:
            by_label.setdefault(lb, []).append(issue["key"])
    dups = {lb: keys for lb, keys in by_label.items() if len(keys) > 1}
    missing = [lb for lb in expected if lb not in by_label]
    orphans = [lb for lb in by_label if lb not in expected]
    stored = {FindingKey(f["ProductArn"], f["Id"]).digest: f for f in h.sh_app.findings()}
    bad_links = []
    for digest, lb in carrier.items():
        finding, keys = stored.get(digest, {}), by_label.get(lb, [])
        udf = finding.get("UserDefinedFields") or {}
        status = (finding.get("Workflow") or {}).get("Status")
        if len(keys) != 1 or udf.get("sh2jira_issue") != keys[0] or status != "NOTIFIED":
            bad_links.append(f"finding {finding.get('Id')}: sh2jira_issue={udf.get('sh2jira_issue')!r}, "
                             f"workflow {status}, issues {keys}")
    ledger_bad = []
    for key, state, issue_key, pending in h.ledger_rows():
        keys = by_label.get(carrier.get(key, f"sh2jira-{key}"), [])  # a group member: its group's issue
        if state != "open" or pending or [issue_key] != keys[:1]:
            ledger_bad.append(f"ledger {key}: state {state}, issue {issue_key!r}, pending {pending}, Jira {keys}")
    examples = ([f"duplicate {lb}: {keys}" for lb, keys in dups.items()][:3]
                + [f"no issue for {expected[lb].doc['Id']}" for lb in missing[:3]]
                + [f"issue {by_label[lb]} has no ticketable finding" for lb in orphans[:3]]
                + [f"issue {key} has no sh2jira- label" for key in unlabelled[:3]] + bad_links[:3] + ledger_bad[:3])
    return Verdict(findings=len(h.generated), ticketable=len(expected), issues=len(issues),
                   duplicates=sum(len(keys) - 1 for keys in dups.values()), missing_issues=len(missing),
                   orphan_issues=len(orphans) + len(unlabelled), missing_linkbacks=len(bad_links),
                   ledger_problems=len(ledger_bad), examples=examples)


def describe(h: Harness, landed: list[Run], completion: list[Run], verdict: Verdict, wall: float) -> list[str]:
    """The figures as report lines."""
    by = Counter(r.fired for r in landed)
    left = Counter[str]()
    for r in landed:
        left.update({k: 1 for k in ("creating", "ambiguous", "pending_linkback") if r.ledger[k]})
    progress = [100 * r.ledger["open"] / max(1, verdict.ticketable) for r in landed]
    spread = f"{min(progress):.0f}/{median(progress):.0f}/{max(progress):.0f}%" if progress else "-"
    return [
        f"findings {verdict.findings} (ticketable {verdict.ticketable}), issues {verdict.issues}",
        f"runs {len(h.runs)}: {len(landed)} killed, {len(completion)} to complete, "
        f"{len(h.runs) - len(landed) - len(completion)} planned kills that did not land",
        "killed by: " + ", ".join(f"{k} {n}" for k, n in sorted(by.items())),
        f"issues open in the ledger at the kills (min/median/max of ticketable): {spread}",
        f"kills that left create intents {left['creating']} (issue already in Jira: {left['ambiguous']}), "
        f"pending link-backs {left['pending_linkback']}; ledger wiped after {h.wiped} kill(s)",
        f"duplicates {verdict.duplicates}, missing issues {verdict.missing_issues}, orphan issues "
        f"{verdict.orphan_issues}, missing link-backs {verdict.missing_linkbacks}, ledger problems "
        f"{verdict.ledger_problems}",
        f"wall time {wall:.1f} s",
        *verdict.examples,
    ]
