"""Grouping end to end on Jira Cloud and Data Center: one issue per group of findings (groups.py)."""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sh2jira.finding import FindingKey
from sh2jira.reconcile import Reconciler, run_command
from tests.e2e.test_shared_ledger import dynamodb_block
from tests.e2e.world import DEFAULT_RULEBOOK, Provider, World, finding, sandbox, world  # noqa: F401
from tests.fixtures.ledgers import MotoServer, moto_server, table_name  # noqa: F401

GROUPED = DEFAULT_RULEBOOK.format(control_findings="by-finding") + """\
  - name: controls-grouped
    match: {control_id: ["S3.*"]}
    group_by: control
"""
PASSED = {"Status": "PASSED", "SecurityControlId": "S3.8"}
FAILED = {"Status": "FAILED", "SecurityControlId": "S3.8"}


def group_issues(world: World) -> list[dict[str, Any]]:
    return [i for i in world.issues() if any(lb.startswith("sh2jira-grp-") for lb in i["labels"])]


def the_group_issue(world: World) -> dict[str, Any]:
    found = group_issues(world)
    assert len(found) == 1, [i["key"] for i in found]
    return world.sandbox.jira_app.issue(found[0]["key"])


def plain(text: str) -> str:
    """Wiki text without its escapes."""
    return text.replace("\\", "")


def linked(world: World, doc: dict[str, Any]) -> str:
    return str((world.finding(doc["Id"]).get("UserDefinedFields") or {}).get("sh2jira_issue", ""))


def workflow(world: World, doc: dict[str, Any]) -> str:
    return str(world.finding(doc["Id"])["Workflow"]["Status"])


@pytest.fixture
def grouped(world: World) -> tuple[World, Provider, list[dict[str, Any]]]:
    world.write_config(rulebook=GROUPED)
    provider = Provider(world)
    docs = [provider.send(finding(n)) for n in range(3)]
    report = world.cycle(world.config(rulebook=GROUPED))
    assert report.created == 1, report
    return world, provider, docs


def cycle(world: World) -> Any:
    return world.cycle(world.config(rulebook=GROUPED))


def test_three_findings_of_one_control_make_one_issue_listing_them(grouped: Any) -> None:
    world, _, docs = grouped
    assert len(world.issues()) == 1
    issue = the_group_issue(world)
    assert "S3.8" in issue["summary"] and "3 active" in issue["summary"]
    for n in range(3):
        assert f"bucket-{n}" in plain(issue["description"])
    assert issue["priority"] == "High"
    assert [linked(world, d) for d in docs] == [issue["key"]] * 3  # each link-back names the group's issue
    assert all(FindingKey(d["ProductArn"], d["Id"]).label not in issue["labels"] for d in docs)
    world.reset_counts()
    report = cycle(world)  # nothing changed: no Jira write
    assert report.created == 0 and report.updated == 0 and world.jira_writes() == 0


def test_a_member_passing_updates_once_and_the_issue_stays_open(grouped: Any) -> None:
    world, provider, docs = grouped
    key = the_group_issue(world)["key"]
    world.reset_counts()
    provider.send({**docs[0], "Compliance": PASSED})
    report = cycle(world)
    assert report.updated == 1 and report.resolved == 0
    edits = sum(n for route, n in world.sandbox.jira_app.calls.items() if route.startswith("PUT "))
    assert edits == 1
    issue = world.sandbox.jira_app.issue(key)
    assert issue["statusCategory"] != "done" and "2 active" in issue["summary"]


def test_a_member_raising_the_groups_priority_edits_once_with_a_comment(grouped: Any) -> None:
    """As a finding's issue gets render.severity_comment when its priority changes, so does a group's."""
    world, provider, docs = grouped
    key = the_group_issue(world)["key"]
    provider.send({**docs[1], "Severity": {"Label": "CRITICAL", "Normalized": 90}})
    assert cycle(world).updated == 1
    issue = world.sandbox.jira_app.issue(key)
    assert issue["priority"] == "Highest"
    (comment,) = [c["body"] for c in issue["comments"] if "priority changed" in c["body"]]
    assert comment.startswith("Security Hub severity changed from HIGH to CRITICAL; so the priority changed from "
                              "High to Highest")
    world.reset_counts()
    provider.send({**docs[0], "Compliance": PASSED})  # a member leaves; the highest is still CRITICAL
    assert cycle(world).updated == 1
    issue = world.sandbox.jira_app.issue(key)
    assert sum("priority changed" in c["body"] for c in issue["comments"]) == 1


def test_a_failing_group_refresh_backs_off_in_the_retry_queue_and_is_listed_as_stuck(grouped: Any) -> None:
    """A group issue Jira refuses to edit: the refresh goes to the retry queue (kind group_refresh), is not tried
    again before its back-off ends, is listed by `reconcile` as stuck, and converges once the fault clears."""
    world, provider, docs = grouped
    key = the_group_issue(world)["key"]
    world.sandbox.jira_app.inject_fault("PUT", f"/issue/{key}$", status=400, times=100)
    provider.send({**docs[0], "Compliance": PASSED})
    report = cycle(world)
    assert any(f"refresh of group issue {key} failed" in e and "retried with back-off" in e for e in report.errors)
    puts = sum(n for route, n in world.sandbox.jira_app.calls.items() if route.startswith("PUT "))
    result, _ = Reconciler(world.syncer(world.config(rulebook=GROUPED))).audit()
    (stuck,) = result.stuck
    assert stuck.startswith("group_refresh group grp-") and f"issue {key}" in stuck and "400" in stuck
    report = cycle(world)  # within the back-off: no second try
    assert sum(n for route, n in world.sandbox.jira_app.calls.items() if route.startswith("PUT ")) == puts
    assert any("wait for a retry (group_refresh" in e for e in report.errors)
    world.sandbox.jira_app.clear_faults()
    report = world.cycle(world.config(rulebook=GROUPED), clock=lambda: time.time() + 3600)  # past the back-off
    assert report.updated == 1 and not report.errors, report.errors
    assert "2 active" in world.sandbox.jira_app.issue(key)["summary"]
    result, _ = Reconciler(world.syncer(world.config(rulebook=GROUPED))).audit()
    assert result.stuck == []


def test_all_pass_resolves_then_one_back_reopens(grouped: Any) -> None:
    world, provider, docs = grouped
    key = the_group_issue(world)["key"]
    for doc in docs:
        provider.send({**doc, "Compliance": PASSED})
    report = cycle(world)
    assert report.resolved == 1
    issue = world.sandbox.jira_app.issue(key)
    assert issue["statusCategory"] == "done"
    assert any("no finding of this group is active" in c["body"] for c in issue["comments"])
    provider.send({**docs[1], "Compliance": FAILED})  # comes back: Security Hub resets the workflow to NEW
    report = cycle(world)
    assert report.reopened == 1 and report.created == 0
    issue = world.sandbox.jira_app.issue(key)
    assert issue["statusCategory"] != "done" and "1 active" in issue["summary"]
    assert len(world.issues()) == 1 and linked(world, docs[1]) == key


def test_group_resolved_in_jira_resolves_every_member(grouped: Any) -> None:
    world, _, docs = grouped
    key = the_group_issue(world)["key"]
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done")
    world.reset_counts()
    report = cycle(world)
    assert report.from_jira == 3
    assert [workflow(world, d) for d in docs] == ["RESOLVED"] * 3
    assert world.sh_calls("BatchUpdateFindings") == 1  # the three share one call
    world.sandbox.jira_app.transition_issue(key, "Reopen")
    assert cycle(world).from_jira == 3
    assert [workflow(world, d) for d in docs] == ["NOTIFIED"] * 3


def test_deleted_ledger_creates_no_second_group_issue(grouped: Any) -> None:
    world, provider, docs = grouped
    for suffix in ("", "-wal", "-shm"):
        Path(f"{world.tmp / 'ledger.sqlite3'}{suffix}").unlink(missing_ok=True)
    provider.send(finding(3))  # a fourth member arrives while the ledger is gone
    report = cycle(world)
    assert report.created == 0
    issue = the_group_issue(world)
    assert len(world.issues()) == 1 and "bucket-3" in plain(issue["description"])
    assert linked(world, finding(3)) == issue["key"]


def test_reconcile_on_a_healthy_grouped_setup_is_clean(grouped: Any) -> None:
    world, provider, _ = grouped
    provider.send(finding(7) | {"Compliance": {"Status": "FAILED", "SecurityControlId": "EC2.2"},
                                "GeneratorId": "security-control/EC2.2"})  # not grouped: an issue of its own
    cycle(world)
    result, _ = Reconciler(world.syncer(world.config(rulebook=GROUPED))).audit()
    assert result.counts()["missing"] == 0 and result.clean, result.as_json()
    labels = Counter(lb for i in world.issues() for lb in i["labels"] if lb.startswith("sh2jira-"))
    assert set(labels.values()) == {1}


def reconcile(world: World, *, fix: bool = False) -> dict[str, Any]:
    out = io.StringIO()
    run_command(world.config(rulebook=GROUPED), fix=fix, as_json=True, out=out, session=world.session,
                environ=world.environ(), now=lambda: world.now)
    return dict(json.loads(out.getvalue()))


def test_reconcile_fix_closes_a_younger_group_duplicate_and_orphaned_group(grouped: Any) -> None:
    world, provider, docs = grouped
    kept = the_group_issue(world)["key"]
    label = next(lb for lb in world.sandbox.jira_app.issue(kept)["labels"] if lb.startswith("sh2jira-grp-"))
    copy = world.sandbox.jira_app.store.create(  # another instance's (or an earlier version's) group issue
        {"fields": {"project": {"key": "SEC"}, "issuetype": {"name": "Task"}, "summary": "copy",
                    "labels": ["sh2jira", label]}}, "2", "sh2jira-bot").key
    got = reconcile(world)
    assert got["duplicates"] == 1 and got["details"]["duplicates"][label[len("sh2jira-"):]] == [kept, copy]
    assert got["missing"] == 0 and got["orphans"] == 0 and got["ledger_drift"] == 0
    got = reconcile(world, fix=True)
    assert all(got[k] == 0 for k in ("missing", "duplicates", "orphans", "stale_linkbacks", "ledger_drift")), got
    assert world.sandbox.jira_app.issue(copy)["statusCategory"] == "done"
    assert world.sandbox.jira_app.issue(kept)["statusCategory"] != "done"
    for doc in docs:  # every member archived while sh2jira did not run: the group issue is an orphan
        provider.send({**doc, "RecordState": "ARCHIVED"})
    got = reconcile(world)
    assert got["orphans"] == 1 and kept in got["details"]["orphans"]
    got = reconcile(world, fix=True)
    assert got["orphans"] == 0 and world.sandbox.jira_app.issue(kept)["statusCategory"] == "done"
    assert cycle(world).created == 0 and len(group_issues(world)) == 2


def test_group_resolved_in_jira_then_the_ledger_lost_resolves_the_members_not_the_decision(grouped: Any) -> None:
    world, _, docs = grouped
    key = the_group_issue(world)["key"]
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Won't Do")
    for suffix in ("", "-wal", "-shm"):  # lost before the closure reached the findings
        Path(f"{world.tmp / 'ledger.sqlite3'}{suffix}").unlink(missing_ok=True)
    report = cycle(world)
    assert report.created == 0 and report.reopened == 0 and report.from_jira == 3
    assert world.sandbox.jira_app.issue(key)["statusCategory"] == "done"
    assert [workflow(world, d) for d in docs] == ["SUPPRESSED"] * 3


def test_grouping_on_the_dynamodb_ledger(world: World, moto_server: MotoServer, tmp_path: Path) -> None:
    """The same flow on the shared ledger (conditional writes per entry revision): create, a member passes, one
    joins, the group issue resolved in Jira; every cycle without an error, one issue."""
    from sh2jira.cli import main
    from sh2jira.config import load_config

    table = table_name(tmp_path, "ddb")
    assert main(["ledger", "init", "-c", str(world.write_config(
        ledger=dynamodb_block(moto_server, table), rulebook=GROUPED))]) == 0
    cfg = load_config(world.write_config(ledger=dynamodb_block(moto_server, table), rulebook=GROUPED))
    cfg = cfg.model_copy(update={"securityhub": cfg.securityhub.model_copy(
        update={"endpoint_url": world.sandbox.securityhub.url})})
    provider = Provider(world)
    docs = [provider.send(finding(n)) for n in range(3)]
    first = world.cycle(cfg)
    assert (first.created, first.errors) == (1, [])
    provider.send({**docs[0], "Compliance": PASSED})
    provider.send(finding(9))
    second = world.cycle(cfg)
    assert (second.created, second.updated, second.errors) == (0, 1, [])
    key = the_group_issue(world)["key"]
    assert "3 active" in world.sandbox.jira_app.issue(key)["summary"] and linked(world, finding(9)) == key
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done")
    third = world.cycle(cfg)
    assert (third.from_jira, third.errors) == (3, []) and len(world.issues()) == 1


def test_vulnerability_groups_one_cve_across_resources(world: World) -> None:
    rules = DEFAULT_RULEBOOK.format(control_findings="by-finding") + """\
  - name: cves
    match: {product: [Inspector]}
    group_by: vulnerability
"""
    provider = Provider(world)

    def inspector(n: int, cve: str) -> dict[str, Any]:
        doc = finding(n)
        doc.pop("Compliance")
        return doc | {"ProductName": "Inspector", "GeneratorId": "AWSInspector", "Title": f"{cve} - openssl",
                      "Id": f"arn:aws:inspector2:us-east-1:111122223333:finding/{n:04d}",
                      "Vulnerabilities": [{"Id": cve, "VulnerablePackages": [{"Name": "openssl", "Version": "1"}]}]}

    docs = [provider.send(inspector(n, "CVE-2024-0001")) for n in range(3)]
    other = provider.send(inspector(3, "CVE-2024-0002"))
    report = world.cycle(world.config(rulebook=rules))
    assert report.created == 2 and len(world.issues()) == 2
    by_cve = {i["summary"].split(" in ")[0].removeprefix("[group] "): i for i in world.issues()}
    assert "3 active" in by_cve["CVE-2024-0001"]["summary"] and "1 active" in by_cve["CVE-2024-0002"]["summary"]
    assert {linked(world, d) for d in docs} == {by_cve["CVE-2024-0001"]["key"]}
    assert linked(world, other) == by_cve["CVE-2024-0002"]["key"]
