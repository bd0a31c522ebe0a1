"""Core sync end to end, on Jira Cloud and Data Center: real boto3 and jira clients over HTTP against the
stand-ins, with the real findings of tests/data/asff."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sh2jira.config import load_config
from sh2jira.finding import Finding, FindingKey
from tests.e2e.world import NOW, World, fresh, sandbox, shared_findings, world  # noqa: F401

PRIORITY = {"CRITICAL": "Highest", "HIGH": "High", "MEDIUM": "Medium", "LOW": "Low"}


def load_shared(world: World) -> list[dict[str, Any]]:
    """Import every shared finding (the provider sends them now); return those Security Hub accepted."""
    docs = [fresh(f, NOW - timedelta(hours=1)) for _, f in shared_findings()]
    result = world.import_findings(docs)
    rejected = {f["Id"] for f in result["FailedFindings"]}
    assert rejected, "some shared findings are invalid on purpose"
    return world.findings()


def ticketable(doc: dict[str, Any]) -> bool:
    f = Finding.parse(doc)
    return (f.is_active and f.workflow_status not in ("RESOLVED", "SUPPRESSED")
            and f.compliance_status != "PASSED" and f.severity_label != "INFORMATIONAL")


def test_shared_findings_become_the_right_issues(world: World) -> None:
    stored = load_shared(world)
    report = world.cycle()
    expected = {FindingKey(d["ProductArn"], d["Id"]) for d in stored if ticketable(d)}
    assert report.created == len(expected) > 20
    assert report.invalid == 0 and report.create_errors == 0
    issues = world.issues()
    assert len(issues) == len(expected)
    by_label = {lb: i for i in issues for lb in i["labels"] if lb.startswith("sh2jira-")}
    for doc in stored:
        f = Finding.parse(doc)
        issue = by_label.get(f.key.label)
        if f.key not in expected:
            assert issue is None, f"{f.id} should have no issue"
            continue
        assert issue is not None
        assert issue["project"] == "SEC"
        assert issue["priority"] == PRIORITY[f.severity_label], f.id
        assert "sh2jira" in issue["labels"] and "security-hub" in issue["labels"]
        assert issue["issuetype"] == ("Bug" if f.product_name.lower() == "guardduty" else "Task")
        if f.product_name.lower() == "guardduty":
            assert "threat" in issue["labels"]
        assert "\n" not in issue["summary"] and len(issue["summary"]) <= 255
        description = issue["description"]
        assert "h3. Remediation" in description
        if f.remediation_url:
            assert f.remediation_url in description
        if f.remediation_text:
            first_word = re.sub(r"[^A-Za-z]", "", f.remediation_text.split()[0])
            assert first_word in description
        assert "View in Security Hub|https://" in description


def test_markup_in_finding_text_is_escaped(world: World) -> None:
    stored = load_shared(world)
    hostile = fresh(next(d for d in stored if ticketable(d)), NOW - timedelta(minutes=30))
    hostile["Id"] += "-hostile"
    hostile["Description"] = "See [click|http://evil.example] [~accountid:123] {html}<b>x</b>{html} !http://e/x.png!"
    hostile["Remediation"] = {"Recommendation": {"Text": "| cell | break *bold*", "Url": "https://docs.example.com/x"}}
    world.import_findings([hostile])
    world.cycle()
    star = next(d for d in stored if ticketable(d) and "*" in d["Title"])
    issue = world.issue_for(star["Id"], star["ProductArn"])
    assert issue["summary"] == star["Title"]  # summaries are plain text in Jira
    assert "\\*" in issue["description"]
    text = world.issue_for(hostile["Id"], hostile["ProductArn"])["description"]
    for active in (r"\[click", r"\[~accountid", r"\{html", r"!http", r"\| cell", r"\*bold"):
        assert not re.search(r"(?<!\\)" + active, text), active  # each construct appears only escaped
    assert "[Remediation guidance|https://docs.example.com/x]" in text


def test_second_cycle_writes_nothing(world: World) -> None:
    load_shared(world)
    world.cycle()
    world.reset_counts()
    report = world.cycle()
    assert report.created == report.updated == 0 and report.linkbacks == 0
    assert world.jira_writes() == 0
    assert world.sh_calls("BatchUpdateFindings") == 0
    # An idle cycle: per region one page of changes and one of findings resolved in Security Hub; one search.
    assert world.sh_calls("GetFindings") == 2
    searches = {r: n for r, n in world.sandbox.jira_app.calls.items() if "/search" in r}
    assert sum(searches.values()) == 1, searches


def test_link_back_is_on_the_finding(world: World) -> None:
    load_shared(world)
    world.cycle()
    linked = 0
    for doc in world.findings():
        if not ticketable(doc):
            assert "sh2jira_issue" not in (doc.get("UserDefinedFields") or {})
            continue
        issue = world.issue_for(doc["Id"], doc["ProductArn"])
        udf = doc["UserDefinedFields"]
        assert udf["sh2jira_issue"] == issue["key"]
        assert udf["sh2jira_url"].endswith(f"/browse/{issue['key']}")
        assert doc["Workflow"]["Status"] == "NOTIFIED"
        assert issue["key"] in doc["Note"]["Text"] and doc["Note"]["UpdatedBy"] == "sh2jira"
        linked += 1
    assert linked > 20


def test_status_only_link_back_batches(world: World) -> None:
    load_shared(world)
    world.reset_counts()
    report = world.cycle(world.config(link_back="status-only"))
    assert report.linkbacks == report.created
    assert world.sh_calls("BatchUpdateFindings") == 1  # one shared value set, < 100 findings
    doc = next(d for d in world.findings() if ticketable(d))
    assert doc["Workflow"]["Status"] == "NOTIFIED" and "sh2jira_issue" not in (doc.get("UserDefinedFields") or {})


def test_changed_finding_updates_its_issue(world: World) -> None:
    stored = load_shared(world)
    world.cycle()
    doc = next(d for d in stored if ticketable(d) and d["Severity"].get("Label") == "MEDIUM")
    key = world.issue_for(doc["Id"], doc["ProductArn"])["key"]
    changed = fresh(doc, NOW - timedelta(minutes=5))
    changed["Severity"] = {"Label": "CRITICAL", "Normalized": 95}
    changed["Description"] = "The provider rewrote this description."
    world.import_findings([changed])
    world.reset_counts()
    report = world.cycle()
    assert report.updated == 1 and report.created == 0
    issue = world.sandbox.jira_app.issue(key)
    assert issue["priority"] == "Highest"
    assert "The provider rewrote this description." in issue["description"]
    assert any("CRITICAL" in c["body"] for c in issue["comments"])
    assert world.jira_writes() == 2  # one edit, one comment


def test_triager_fields_are_left_alone(world: World) -> None:
    stored = load_shared(world)
    world.cycle()
    doc = next(d for d in stored if ticketable(d))
    key = world.issue_for(doc["Id"], doc["ProductArn"])["key"]
    world.sandbox.jira_app.edit_issue(key, update={"labels": [{"add": "triaged"}]})
    world.sandbox.jira_app.transition_issue(key, "Start Progress")
    changed = fresh(doc, NOW - timedelta(minutes=5))
    changed["Title"] = "A new title from the provider"
    world.import_findings([changed])
    world.cycle()
    issue = world.sandbox.jira_app.issue(key)
    assert issue["summary"] == "A new title from the provider"
    assert "triaged" in issue["labels"] and issue["status"] == "In Progress"


def test_skip_rules_skip(world: World) -> None:
    rulebook = """\
defaults: {project: SEC, issue_type: Task}
filters: {severity: [CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL]}
unmatched: skip
rules:
  - name: only-critical
    match: {severity: [CRITICAL]}
    route: {labels: [critical]}
"""
    stored = load_shared(world)
    report = world.cycle(world.config(rulebook=rulebook))
    critical = [d for d in stored if ticketable(d) and Finding.parse(d).severity_label == "CRITICAL"]
    assert report.created == len(critical) > 0
    assert all("critical" in i["labels"] for i in world.issues())


def test_consolidated_control_switch(world: World) -> None:
    control = next(d for _, d in shared_findings() if d.get("Compliance", {}).get("SecurityControlId") == "S3.12")
    old = fresh(control, NOW - timedelta(hours=2))
    old["Severity"] = {"Label": "HIGH", "Normalized": 70}
    old["Compliance"] = {**old["Compliance"], "Status": "FAILED"}
    for mode, expected_issues in (("by-control-and-resource", 1), ("by-finding", 2)):
        world.sandbox.securityhub_app.reset()
        world.sandbox.jira_app.reset()
        cfg = world.config(control_findings=mode, name=f"{mode}.yaml", ledger=f"{mode}.sqlite3")
        world.import_findings([old])
        syncer = world.syncer(cfg)
        syncer.run_cycle()
        archived = fresh(old, NOW - timedelta(minutes=30))
        archived["RecordState"] = "ARCHIVED"
        new = fresh(old, NOW - timedelta(minutes=30))
        new["Id"] = old["Id"] + "-consolidated"
        world.import_findings([archived, new])
        syncer.run_cycle()
        assert len(world.issues()) == expected_issues, mode
        syncer.ledger.close()


def test_dry_run_writes_nothing(world: World, capsys: Any) -> None:
    load_shared(world)
    before = world.findings()
    report = world.cycle(dry_run=True, out=__import__("sys").stdout)
    out = capsys.readouterr().out
    assert report.created > 20 and out.count("CREATE [SEC/") == report.created
    assert world.issues() == [] and world.findings() == before
    assert not (world.tmp / "ledger.sqlite3").exists()


def test_bad_finding_is_reported_and_the_rest_go_on(world: World) -> None:
    docs = [fresh(f, NOW - timedelta(hours=1)) for _, f in shared_findings()[:5]]
    bad = fresh(shared_findings()[0][1], NOW - timedelta(hours=1))
    bad["Id"] = bad["Id"] + "-bad"
    result = world.import_findings([*docs, bad])
    assert result["FailedFindings"] == []
    # What the service hands back can still surprise a consumer (older schema versions, product drift): the
    # stored copy gets a title that is not a string.
    world.sandbox.securityhub_app.tamper(bad["Id"], lambda doc: doc.update(Title=42))
    report = world.cycle()
    assert report.invalid == 1 and any(bad["Id"] in e for e in report.errors)
    assert report.created == sum(1 for d in world.findings() if d["Id"] != bad["Id"] and ticketable(d))


def test_remote_links_are_optional_and_upserted(world: World) -> None:
    docs = [fresh(f, NOW - timedelta(hours=1)) for _, f in shared_findings()[:6]]
    world.import_findings(docs)
    world.cycle()
    assert all(not i["remote_links"] for i in world.issues())  # off by default: no extra call per issue
    world.sandbox.jira_app.reset()
    cfg = world.config(remote_links=True, ledger="links.sqlite3")
    report = world.cycle(cfg)
    issues = world.issues()
    assert report.created == len(issues) > 0
    for issue in issues:
        (link,) = issue["remote_links"]
        assert link["object"]["url"].startswith("https://") and "securityhub/home?region=" in link["object"]["url"]
        assert link["globalId"].startswith("sh2jira:")


def test_progress_hook_sees_each_page(world: World) -> None:
    world.import_findings([fresh(f, NOW - timedelta(hours=1)) for _, f in shared_findings()])
    cfg = world.config()
    cfg = cfg.model_copy(update={"securityhub": cfg.securityhub.model_copy(update={"page_size": 10})})
    seen: list[tuple[int, str]] = []
    world.syncer(cfg, progress=lambda report, scope: seen.append((report.read, scope))).run_cycle()
    assert len(seen) >= 3 and seen[-1][0] > seen[0][0] and {s for _, s in seen} == {"us-east-1"}


def test_paced_to_the_quotas_instead_of_bouncing_off_them(world: World) -> None:
    """Security Hub throttling on at the real quotas: 45 link-backs (more than the burst of 30) and the reads
    go through with no 429 at all, because sh2jira waits for its slot before sending."""
    from tests.e2e.world import finding

    app = world.sandbox.securityhub_app
    app.load([fresh(finding(n), NOW - timedelta(hours=1)) for n in range(45)])
    app.set_throttling(True)
    try:
        report = world.cycle()
    finally:
        app.set_throttling(False)
    assert report.created == 45 and report.linkbacks == 45
    assert sum(app.calls.throttled.values()) == 0


def test_jira_calls_are_paced_to_the_configured_rate(world: World) -> None:
    from tests.e2e.world import finding

    world.sandbox.securityhub_app.load([fresh(finding(n), NOW - timedelta(hours=1)) for n in range(12)])
    text = world.write_config().read_text().replace("timeout_seconds: 10", "timeout_seconds: 10\n"
                                                    "  bulk_size: 1\n  max_requests_per_second: 4")
    (world.tmp / "paced.yaml").write_text(text)
    cfg = load_config(world.tmp / "paced.yaml")
    cfg = cfg.model_copy(update={"securityhub": cfg.securityhub.model_copy(
        update={"endpoint_url": world.sandbox.securityhub.url})})
    world.sandbox.jira_app.set_rate_limit(5, 5)  # the site allows 5/s; sh2jira is told 4/s
    try:
        syncer = world.syncer(cfg)
        report = syncer.run_cycle()
    finally:
        world.sandbox.jira_app.set_rate_limit(None)
    assert report.created == 12 and report.create_errors == 0
    assert syncer.sink.retries.get("429", 0) == 0  # never bounced off the limit
    assert syncer.sink.limiter is not None and syncer.sink.limiter.waits > 0
