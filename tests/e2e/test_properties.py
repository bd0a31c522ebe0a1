"""Property: for any sequence of finding changes (provider and console) and Jira actions, with sync cycles in
between, each finding has at most one issue and, after each cycle, the finding's workflow and the issue's status
agree. Runs against the real stand-ins through the real clients."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sh2jira.finding import FindingKey
from sh2jira.sandbox import launch
from tests.e2e.world import NOW, World, finding, fresh

FINDINGS = 2
ACTIONS = ["cycle", "cycle", "cycle", "severity", "archive", "unarchive", "pass", "fail", "console_resolve",
           "jira_done", "jira_wont_do", "jira_reopen"]


@pytest.fixture(scope="module")
def box() -> Iterator[launch.Sandbox]:
    sandbox = launch.start("cloud")
    yield sandbox
    sandbox.stop()


class Scenario:
    def __init__(self, box: launch.Sandbox) -> None:
        box.securityhub_app.reset()
        box.jira_app.reset()
        self.tmp = Path(tempfile.mkdtemp(prefix="sh2jira-prop-"))
        self.world = World(box, self.tmp, "cloud")
        self.cfg = self.world.config()
        self.minutes = itertools.count(1)
        self.docs = [finding(n) for n in range(FINDINGS)]
        for i in range(FINDINGS):
            self.send(i)

    def send(self, i: int, **changes: Any) -> None:
        self.docs[i] = {**self.docs[i], **changes}
        sent = fresh(self.docs[i], NOW - timedelta(hours=5) + timedelta(minutes=next(self.minutes)))
        assert self.world.import_findings([sent])["FailedFindings"] == []

    def stored(self, i: int) -> dict[str, Any]:
        return self.world.finding(self.docs[i]["Id"])

    def issues_of(self, i: int) -> list[dict[str, Any]]:
        label = FindingKey(self.docs[i]["ProductArn"], self.docs[i]["Id"]).label
        return [x for x in self.world.issues() if label in x["labels"]]

    def gone(self, i: int) -> bool:
        doc = self.stored(i)
        return doc.get("RecordState") == "ARCHIVED" or doc.get("Compliance", {}).get("Status") == "PASSED"

    def act(self, action: str, i: int) -> None:
        jira = self.world.sandbox.jira_app
        issues = self.issues_of(i)
        if action == "cycle":
            self.world.syncer(self.cfg).run_cycle()
            self.check()
        elif action == "severity":
            label = "CRITICAL" if self.docs[i]["Severity"]["Label"] == "HIGH" else "HIGH"
            self.send(i, Severity={"Label": label, "Normalized": 95 if label == "CRITICAL" else 70})
        elif action in ("archive", "unarchive"):
            self.send(i, RecordState="ARCHIVED" if action == "archive" else "ACTIVE")
        elif action in ("pass", "fail"):
            self.send(i, Compliance={"Status": "PASSED" if action == "pass" else "FAILED",
                                     "SecurityControlId": "S3.8"})
        elif action == "console_resolve":
            self.world.client().batch_update_findings(
                FindingIdentifiers=[{"Id": self.docs[i]["Id"], "ProductArn": self.docs[i]["ProductArn"]}],
                Workflow={"Status": "RESOLVED"})
        elif issues and action in ("jira_done", "jira_wont_do") and issues[0]["statusCategory"] != "done":
            jira.transition_issue(issues[0]["key"], "Done",
                                  resolution="Done" if action == "jira_done" else "Won't Do")
        elif issues and action == "jira_reopen" and issues[0]["statusCategory"] == "done" and not self.gone(i):
            jira.transition_issue(issues[0]["key"], "Reopen")

    def check(self) -> None:
        for i in range(FINDINGS):
            issues = self.issues_of(i)
            assert len(issues) <= 1, f"finding {i} has {len(issues)} issues"
            doc = self.stored(i)
            workflow = doc["Workflow"]["Status"]
            if not issues:
                ticketable = not self.gone(i) and workflow in ("NEW", "NOTIFIED")
                assert not ticketable, f"finding {i} ({workflow}) has no issue"
                continue
            done = issues[0]["statusCategory"] == "done"
            closed_finding = workflow in ("RESOLVED", "SUPPRESSED") or self.gone(i)
            assert done == closed_finding, f"finding {i}: workflow {workflow}, gone {self.gone(i)}, done {done}"
            if not done:
                assert workflow == "NOTIFIED", f"finding {i}: open issue but workflow {workflow}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, FINDINGS - 1)), min_size=1, max_size=14))
@example([("archive", 0), ("cycle", 0), ("unarchive", 0)])  # recurrence after an archive
@example([("jira_wont_do", 1), ("cycle", 0), ("pass", 1), ("cycle", 0), ("fail", 1)])  # suppressed stays done
@example([("console_resolve", 0), ("jira_reopen", 0), ("cycle", 0), ("archive", 0), ("unarchive", 0)])
def test_one_issue_per_finding_and_both_sides_agree(box: launch.Sandbox, steps: list[tuple[str, int]]) -> None:
    scenario = Scenario(box)
    scenario.act("cycle", 0)
    for action, i in steps:
        scenario.act(action, i)
    scenario.act("cycle", 0)
    scenario.act("cycle", 0)  # a second cycle with nothing new must keep everything as it is
