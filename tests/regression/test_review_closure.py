"""Regressions found in review (closure and identity), proved end to end against the stand-ins with real
clients. Each test failed before its fix."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.world import NOW, Provider, World, finding, fresh, sandbox, world  # noqa: F401

# The shipped example's coarse filter (config.example.yaml): informational findings are never read.
FILTERED_RULEBOOK = """\
defaults:
  project: SEC
  issue_type: Task
  labels: [security-hub]
filters:
  severity: [CRITICAL, HIGH, MEDIUM, LOW]
control_findings: {control_findings}
"""




def issue(world: World, doc: dict[str, Any]) -> dict[str, Any]:
    return world.sandbox.jira_app.issue(world.issue_for(doc["Id"], doc["ProductArn"])["key"])


# Security Hub sets Severity.Label INFORMATIONAL on a control finding that passes (every PASSED control finding
# in tests/data/asff has it), so the example config's severity filter hides exactly the update that should
# close the issue.
PASSED_INFO = {"Compliance": {"Status": "PASSED", "SecurityControlId": "S3.8"},
               "Severity": {"Label": "INFORMATIONAL", "Normalized": 0}}


@pytest.mark.parametrize("change", ["passed", "archived-passed"])
def test_passed_finding_hidden_by_severity_filter_still_resolves_its_issue(world: World, change: str) -> None:
    cfg = world.config(rulebook=FILTERED_RULEBOOK.format(control_findings="by-finding"))
    provider = Provider(world)
    doc = provider.send(finding(0))
    assert world.cycle(cfg).created == 1
    gone = {**doc, **PASSED_INFO}
    if change == "archived-passed":
        gone["RecordState"] = "ARCHIVED"
    provider.send(gone)
    report = world.cycle(cfg)
    assert report.resolved == 1
    assert issue(world, doc)["statusCategory"] == "done"


def test_consolidation_switch_while_issue_is_closed_keeps_one_issue(world: World) -> None:
    cfg = world.config(control_findings="by-control-and-resource")
    provider = Provider(world)
    old = provider.send(finding(0))
    assert world.cycle(cfg).created == 1
    key = world.issue_for(old["Id"], old["ProductArn"])["key"]
    passed = {"Status": "PASSED", "SecurityControlId": "S3.8"}
    provider.send({**old, "Compliance": passed})
    assert world.cycle(cfg).resolved == 1
    # Consolidated control findings switched on: the old finding is archived, a new Id takes its place
    # (same account, region, control and resource) and still passes.
    provider.send({**old, "Compliance": passed, "RecordState": "ARCHIVED"})
    new = {**old, "Id": old["Id"].replace("/finding/", "/finding/consolidated-")}
    provider.send({**new, "Compliance": passed})
    world.cycle(cfg)
    # The control fails again: Security Hub resets the workflow to NEW.
    provider.send({**new, "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.8"}})
    report = world.cycle(cfg)
    assert report.created == 0 and len(world.issues()) == 1
    assert report.reopened == 1 and world.sandbox.jira_app.issue(key)["statusCategory"] != "done"
