"""`sh2jira explain`: for each finding in a file, the rule that matched and why, and the issue exactly as it
would be written. Reads no service and writes nothing, so admins can try a rulebook on sample findings."""

from __future__ import annotations

import json
from typing import Any, TextIO

from .finding import Finding, FindingError, unwrap_documents
from .plan import draft_issue, untracked_reason
from .rulebook import decide, explain


def explain_finding(cfg: Any, finding: Finding, out: TextIO) -> None:
    print(explain(cfg.rulebook, finding), file=out)
    decision = decide(cfg.rulebook, finding)
    reason = untracked_reason(finding)
    if reason:
        print(f"  → no issue for a new finding: {reason}", file=out)
    if decision.action == "skip" or decision.route is None:
        print("  → skip", file=out)
        return
    draft = draft_issue(finding, decision.route, cfg.rulebook)
    print(f"  → ticket in {draft.project} as {draft.issue_type}, priority {draft.priority}", file=out)
    issue = {"project": draft.project, "issuetype": draft.issue_type, "summary": draft.summary,
             "priority": draft.priority, "labels": list(draft.labels), "components": list(draft.components),
             "assignee": draft.assignee, **dict(draft.custom_fields)}
    print("  issue fields:", file=out)
    for line in json.dumps(issue, indent=2, ensure_ascii=False).splitlines():
        print(f"    {line}", file=out)
    print("  description (Jira wiki markup):", file=out)
    for line in draft.description.splitlines():
        print(f"    | {line}", file=out)


def explain_file(cfg: Any, path: str, out: TextIO) -> int:
    """Explain every finding in a JSON file; exit 0 when all parsed, 2 when the file or a finding is bad."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"{path}: cannot read findings: {exc}", file=out)
        return 2
    status = 0
    for i, raw in enumerate(unwrap_documents(doc)):
        if i:
            print(file=out)
        try:
            explain_finding(cfg, Finding.parse(raw), out)
        except FindingError as exc:
            print(f"{path}: finding #{i}: {exc}", file=out)
            status = 2
    return status
