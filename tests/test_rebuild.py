"""The pure side of the ledger-as-a-cache: Jira issues → ledger entries, planning on rebuilt entries, the audit.
No servers."""

from __future__ import annotations

from typing import Any

from sh2jira.audit import audit
from sh2jira.ledger import CLOSED, CREATING, OPEN, Entry
from sh2jira.plan import IDENTITY_PROPERTY, plan_page
from sh2jira.rebuild import adoptions, entry_from_issue, parse_issue
from tests.test_plan import finding, rulebook, tracked


def jira_issue(key: str, f: Any, *, done: bool = False, created: str = "2026-11-01T00:00:00.000+0000",
               summary: str | None = None, priority: str = "High", labels: tuple[str, ...] = (),
               identity: bool = True, resolution: str = "") -> dict[str, Any]:
    """A search result as Jira returns it for sh2jira's fields and identity property."""
    from sh2jira import render

    props = {IDENTITY_PROPERTY: {"key": f.key.digest, "id": f.id, "product_arn": f.key.product_arn,
                                 "scope": "us-east-1"}} if identity else {}
    return {"key": key, "id": key.split("-")[1], "properties": props, "fields": {
        "labels": ["sh2jira", f.key.label, "security-hub", "prod", *labels],
        "status": {"statusCategory": {"key": "done" if done else "new"}},
        "resolution": {"name": resolution} if resolution else None, "created": created,
        "summary": summary if summary is not None else render.summary(f), "priority": {"name": priority}}}


def test_parse_issue_reads_the_label_and_identity_and_ignores_other_issues() -> None:
    f = finding()
    issue = parse_issue(jira_issue("SEC-7", f))
    assert issue is not None and issue.digest == f.key.digest and issue.identity["id"] == f.id
    assert parse_issue({"key": "OPS-1", "fields": {"labels": ["sh2jira"]}}) is None
    copied = jira_issue("SEC-8", f)
    copied["properties"][IDENTITY_PROPERTY]["key"] = "0" * 20  # a property copied from another finding's issue
    assert parse_issue(copied).identity == {}  # type: ignore[union-attr]


def test_entry_from_issue_mirrors_jira_and_keeps_what_the_ledger_knew() -> None:
    f = finding()
    done = parse_issue(jira_issue("SEC-7", f, done=True, resolution="Won't Do", identity=False))
    assert done is not None
    known = Entry(key=f.key.digest, product_arn=f.key.product_arn, finding_id=f.id, state=OPEN, region="eu-west-1")
    entry = entry_from_issue(done, known)
    assert (entry.state, entry.issue_key, entry.finding_id, entry.region) == (CLOSED, "SEC-7", f.id, "eu-west-1")
    assert "description=" not in entry.fingerprint and "resolution=Won't Do" in entry.fingerprint


def test_adoptions_take_the_oldest_issue_and_fill_create_intents() -> None:
    f, g = finding(), finding(Id="arn:aws:securityhub:us-east-1:111122223333:finding/2")
    old = parse_issue(jira_issue("SEC-1", f, created="2026-11-01T00:00:00.000+0000"))
    young = parse_issue(jira_issue("SEC-9", f, created="2026-11-02T00:00:00.000+0000"))
    other = parse_issue(jira_issue("SEC-3", g))
    assert old and young and other
    intent = Entry(key=g.key.digest, product_arn=g.key.product_arn, finding_id=g.id, state=CREATING)
    forked = Entry(key=f.key.digest, product_arn=f.key.product_arn, finding_id=f.id, state=OPEN, issue_key="SEC-9")
    writes = {e.key: e for e in adoptions([young, old, other], {f.key.digest: forked, g.key.digest: intent})}
    assert writes[f.key.digest].issue_key == "SEC-1"  # the younger duplicate loses
    assert writes[g.key.digest].issue_key == "SEC-3" and writes[g.key.digest].state == OPEN
    # In a later chunk (oldest first), a younger issue never displaces the one already chosen.
    chosen = entry_from_issue(old)
    assert adoptions([young], {f.key.digest: chosen}) == []


def test_planning_on_a_rebuilt_entry_writes_nothing_when_jira_matches() -> None:
    rb = rulebook()
    f = finding(Workflow={"Status": "NOTIFIED"},
                UserDefinedFields={"sh2jira_issue": "SEC-1"})
    issue = parse_issue(jira_issue("SEC-1", f, labels=("triage-later",)))
    assert issue is not None
    plan = plan_page([f], rb, {f.key.digest: entry_from_issue(issue)}, {})
    assert not plan.updates and not plan.creates and plan.unchanged == 1
    (entry,) = plan.entries  # learnt: the full fingerprint and the owned labels, linked as it is
    assert "description=" in entry.fingerprint and "triage-later" not in entry.labels
    assert not entry.linkback_pending


def test_planning_on_a_rebuilt_entry_writes_what_really_differs_and_adds_labels_only() -> None:
    rb = rulebook()
    f = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"})
    stale = jira_issue("SEC-1", f, priority="Low", labels=("triage-later",))
    stale["fields"]["labels"].remove("prod")
    issue = parse_issue(stale)
    assert issue is not None
    (up,) = plan_page([f], rb, {f.key.digest: entry_from_issue(issue)}, {}).updates
    assert set(up.fields) == {"priority"} and up.labels_add == ("prod",) and up.labels_remove == ()


def test_rebuilt_done_issue_sends_the_closure_to_a_notified_finding() -> None:
    f = finding(Workflow={"Status": "NOTIFIED"})
    issue = parse_issue(jira_issue("SEC-1", f, done=True, resolution="Won't Do"))
    assert issue is not None
    plan = plan_page([f], rulebook(), {f.key.digest: entry_from_issue(issue)}, {})
    (write,) = plan.finding_writes
    assert write.values["Workflow"] == {"Status": "SUPPRESSED"} and not plan.reopens


def test_reopen_keeps_the_fingerprint() -> None:
    rb = rulebook()
    f = finding()
    entry = tracked(f, rb, state=CLOSED)
    (reopen,) = plan_page([f], rb, {f.key.digest: entry}, {}).reopens
    assert reopen.entry.fingerprint == entry.fingerprint and reopen.entry.state == OPEN


def test_audit_counts_each_kind() -> None:
    rb = rulebook()
    active = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"})
    archived = finding(Id="arn:aws:securityhub:us-east-1:111122223333:finding/2", RecordState="ARCHIVED")
    new = finding(Id="arn:aws:securityhub:us-east-1:111122223333:finding/3")
    issues = [parse_issue(jira_issue("SEC-1", active)), parse_issue(jira_issue("SEC-4", active,
                                                                             created="2026-11-05")),
              parse_issue(jira_issue("SEC-2", archived))]
    entries = [entry_from_issue(issues[0]), entry_from_issue(issues[2]).with_(state=CLOSED)]  # type: ignore[arg-type]
    result = audit([active, archived, new], [i for i in issues if i], entries, rb)
    assert result.missing == [new.id]
    assert result.duplicates == {active.key.digest: ["SEC-1", "SEC-4"]}
    assert result.orphans == {"SEC-2": "the finding was archived in Security Hub"}
    assert result.ledger_drift == {"SEC-2": "the ledger says closed, Jira says open"}
    assert result.stale_linkbacks == {}
    assert not result.clean and "missing=1 duplicates=1 orphans=1" in result.line()




def test_rebuilt_open_issue_sends_a_jira_reopen_to_a_finding_sh2jira_had_closed() -> None:
    """The issue was reopened in Jira, then the ledger was lost: the finding still says RESOLVED with sh2jira's
    closed marker. The reopen is written to the finding; the issue is not resolved again."""
    f = finding(Workflow={"Status": "RESOLVED"}, UserDefinedFields={"sh2jira_status": "closed"})
    issue = parse_issue(jira_issue("SEC-1", f))
    assert issue is not None
    plan = plan_page([f], rulebook(), {f.key.digest: entry_from_issue(issue)}, {})
    (write,) = plan.finding_writes
    assert write.kind == "reopened" and write.values["Workflow"] == {"Status": "NOTIFIED"} and not plan.resolves
    console = finding(Workflow={"Status": "RESOLVED"}, UserDefinedFields={"sh2jira_status": "open"})
    assert plan_page([console], rulebook(), {f.key.digest: entry_from_issue(issue)}, {}).resolves  # the console's
