"""`sh2jira reconcile`: exact counts on a Jira and Security Hub with injected faults, and `--fix` to zero.
End to end on Jira Cloud and Data Center with the real clients."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from sh2jira.cli import main
from sh2jira.finding import FindingKey
from sh2jira.reconcile import run_command
from tests.e2e.world import Provider, World, cli_env, finding, sandbox, world  # noqa: F401


def reconcile(world: World, *, fix: bool = False) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    rc = run_command(world.config(), fix=fix, as_json=True, out=out, session=world.session,
                     environ=world.environ(), now=lambda: world.now)
    return rc, json.loads(out.getvalue())


def label(doc: dict[str, Any]) -> str:
    return FindingKey(doc["ProductArn"], doc["Id"]).label


def other_tool_issue(world: World, doc: dict[str, Any]) -> str:
    """An issue made by an earlier version or another tool, carrying the finding's label."""
    return world.sandbox.jira_app.store.create(
        {"fields": {"project": {"key": "SEC"}, "issuetype": {"name": "Task"}, "summary": "copy",
                    "labels": ["sh2jira", label(doc)]}}, "2", "sh2jira-bot").key


@pytest.fixture
def messy(world: World) -> tuple[World, dict[str, Any]]:
    """A synced site, then: 2 duplicates, 2 orphans, 3 missing, 1 stale link-back, 1 ledger drift."""
    provider = Provider(world)
    docs = [provider.send(finding(n)) for n in range(10)]
    assert world.cycle().created == 10
    dups = [other_tool_issue(world, d) for d in docs[:2]]
    for doc in docs[2:4]:  # archived, and sh2jira has not run since
        provider.send({**doc, "RecordState": "ARCHIVED"})
    missing = [provider.send(finding(n)) for n in range(10, 13)]
    world.client().batch_update_findings(  # someone points a finding at another issue
        FindingIdentifiers=[{"Id": docs[4]["Id"], "ProductArn": docs[4]["ProductArn"]}],
        UserDefinedFields={"sh2jira_issue": "SEC-999"})
    drifted = world.issue_for(docs[5]["Id"])["key"]
    world.sandbox.jira_app.transition_issue(drifted, "Done", resolution="Done")  # not seen by sh2jira yet
    return world, {"docs": docs, "dups": dups, "missing": missing, "drifted": drifted}


def test_reconcile_counts_exactly_what_was_injected(messy: Any) -> None:
    world, what = messy
    rc, got = reconcile(world)
    assert rc == 1
    counts = {k: got[k] for k in ("missing", "duplicates", "orphans", "stale_linkbacks", "ledger_drift")}
    assert counts == {"missing": 3, "duplicates": 2, "orphans": 2, "stale_linkbacks": 1, "ledger_drift": 1}
    assert got["findings_active"] == 11 and got["issues_open"] == 11  # 10 + 2 copies - 1 done
    details = got["details"]
    assert sorted(details["missing"]) == sorted(d["Id"] for d in what["missing"])
    assert sorted(k for keys in details["duplicates"].values() for k in keys[1:]) == sorted(what["dups"])
    assert what["drifted"] in details["ledger_drift"]
    assert details["stale_linkbacks"] == {what["docs"][4]["Id"]: "SEC-999"}


def test_reconcile_fix_converges_to_zero_and_deletes_nothing(messy: Any) -> None:
    world, what = messy
    before = len(world.issues())
    rc, got = reconcile(world, fix=True)
    assert got["before_fix"]["duplicates"] == 2
    assert rc == 0, got
    assert all(got[k] == 0 for k in ("missing", "duplicates", "orphans", "stale_linkbacks", "ledger_drift"))
    assert len(world.issues()) == before + 3  # the 3 missing created, nothing deleted
    app = world.sandbox.jira_app
    for key, doc in zip(what["dups"], what["docs"], strict=False):
        dup = app.issue(key)
        assert dup["statusCategory"] == "done" and dup["resolution"] == "Duplicate"
        assert any(x["type"] == "Duplicate" for x in dup["links"])
        assert any("Duplicate of" in c["body"] for c in dup["comments"])
        assert str(world.finding(doc["Id"])["UserDefinedFields"]["sh2jira_issue"]) != key
    for doc in what["docs"][2:4]:  # orphans resolved through the closure rules
        issue = next(i for i in world.issues() if label(doc) in i["labels"])
        assert issue["statusCategory"] == "done"
    assert world.finding(what["docs"][5]["Id"])["Workflow"]["Status"] == "RESOLVED"  # drift: Jira's word wins
    assert reconcile(world)[0] == 0  # and it stays clean
    assert world.cycle().created == 0


def test_reconcile_command_line_exit_codes(cli_env: World, capsys: Any) -> None:
    world = cli_env
    provider = Provider(world)
    provider.send(finding(1))
    cfg = world.write_config()
    assert main(["reconcile", "-c", str(cfg)]) == 1
    assert "missing=1" in capsys.readouterr().out
    assert main(["run", "--once", "-c", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["reconcile", "-c", str(cfg)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("findings_active=1 issues_open=1 missing=0 duplicates=0 orphans=0")
    bad = world.tmp / "bad.yaml"
    bad.write_text("securityhub: {regions: []}\n")
    assert main(["reconcile", "-c", str(bad)]) == 2


def test_long_running_mode_audits_on_schedule_and_exports_the_counts(world: World) -> None:
    from datetime import timedelta

    from sh2jira.metrics import Metrics
    from sh2jira.reconcile import PeriodicAudit

    provider = Provider(world)
    provider.send(finding(1))
    metrics = Metrics()
    syncer = world.syncer()
    audits = PeriodicAudit(syncer, 24, metrics)
    first = audits.maybe_run()  # before any cycle: the finding is missing
    assert first is not None and first.missing
    assert metrics.registry.get_sample_value("sh2jira_reconcile_count", {"kind": "missing"}) == 1
    syncer.run_cycle()
    assert audits.maybe_run() is None  # not due again for 24 h (kept in the ledger: a restart waits too)
    assert PeriodicAudit(world.syncer(), 24).maybe_run() is None
    world.now += timedelta(hours=25)
    assert audits.maybe_run() is not None
    assert metrics.registry.get_sample_value("sh2jira_reconcile_count", {"kind": "missing"}) == 0
    assert PeriodicAudit(syncer, 0).due() is False  # 0 turns it off


def test_reconcile_lists_the_writes_waiting_in_the_retry_queue(world: World) -> None:
    provider = Provider(world)
    doc = provider.send(finding(1))
    world.cycle()
    key = world.issue_for(doc["Id"])["key"]
    world.sandbox.jira_app.inject_fault("PUT", rf"/issue/{key}$", status=400, times=100)
    provider.send({**doc, "Title": "S3 buckets should block public access (changed)"})
    assert world.cycle().update_errors == 1
    out = io.StringIO()
    run_command(world.config(), fix=False, as_json=False, out=out, session=world.session, environ=world.environ(),
                now=lambda: world.now)
    stuck = [line for line in out.getvalue().splitlines() if line.startswith("stuck:")]
    assert len(stuck) == 1 and "update" in stuck[0] and key in stuck[0]
