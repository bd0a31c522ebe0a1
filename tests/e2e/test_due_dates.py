"""Due dates (`sla:`), exploit conditions and `min_age`, end to end on Jira Cloud and Data Center with the real
clients: the issue carries the due date; an Inspector finding with an exploit gets the shorter one; a severity rise
moves it earlier; a young finding is ticketed only once it comes of age — by the world's clock, with Security Hub
never changing it again — and one that goes away before then never gets an issue."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from typing import Any

from sh2jira.finding import FindingKey
from sh2jira.retry_queue import RetryQueue
from sh2jira.sandbox.jira_control import dump_issue
from tests.e2e.world import ASFF, NOW, Provider, World, finding, iso, sandbox, world  # noqa: F401

RULEBOOK = """\
defaults:
  project: SEC
  issue_type: Task
  labels: [security-hub]
sla: {{CRITICAL: 7d, HIGH: 30d}}
{min_age}
rules:
  - name: exploitable
    match: {{exploit_available: true}}
    sla: {{CRITICAL: 3d, HIGH: 7d}}
"""


def config(world: World, min_age: str = "") -> Any:
    return world.config(rulebook=RULEBOOK.format(min_age=f"min_age: {min_age}" if min_age else ""))


def due(world: World, doc: dict[str, Any]) -> str | None:
    key = world.issue_for(doc["Id"])["key"]
    store = world.sandbox.jira_app.store
    issue = dump_issue(store, store.issue(key).id)
    return issue["duedate"]  # type: ignore[no-any-return]


def inspector_log4j(exploit: str) -> dict[str, Any]:
    """The real Inspector finding (Log4Shell, CRITICAL, first observed 2022-01-17), with ExploitAvailable set."""
    doc = json.loads((ASFF / "custodian-inspector2-ecr-log4j-cve-2021-44228.json").read_text())
    doc = copy.deepcopy(doc[0] if isinstance(doc, list) else doc)
    doc = doc["Findings"][0] if "Findings" in doc else doc
    doc["Vulnerabilities"][0]["ExploitAvailable"] = exploit
    return dict(doc)


def test_issues_get_the_severity_due_date_and_exploits_the_shorter_one(world: World) -> None:
    provider = Provider(world)
    high = provider.send({**finding(1), "FirstObservedAt": "2026-11-21T10:00:00.000Z"})  # HIGH → 30 days
    from_created = provider.send(finding(2))  # no FirstObservedAt: counted from CreatedAt 2026-11-20
    exploited = provider.send(inspector_log4j("YES"))  # CRITICAL with an exploit → 3 days
    plain = provider.send({**inspector_log4j("NO"), "Id": inspector_log4j("NO")["Id"] + "-plain"})  # → 7 days
    report = world.cycle(config(world))
    assert (report.created, report.errors) == (4, [])
    assert due(world, high) == "2026-12-21"
    assert due(world, from_created) == "2026-12-20"
    assert due(world, exploited) == "2022-01-20"
    assert due(world, plain) == "2022-01-24"


def test_a_severity_rise_moves_the_due_date_earlier_and_a_drop_never_later(world: World) -> None:
    provider = Provider(world)
    doc = provider.send({**finding(1), "FirstObservedAt": "2026-11-21T10:00:00.000Z"})
    world.cycle(config(world))
    assert due(world, doc) == "2026-12-21"
    provider.send({**doc, "Severity": {"Label": "CRITICAL", "Normalized": 90}})
    assert world.cycle(config(world)).updated == 1
    assert due(world, doc) == "2026-11-28"
    issue = world.issue_for(doc["Id"])
    assert any("Due date moved earlier, from 2026-12-21 to 2026-11-28" in c["body"] for c in issue["comments"])
    provider.send({**doc, "Severity": {"Label": "HIGH", "Normalized": 70}})
    assert world.cycle(config(world)).updated == 1  # the priority goes back down; the due date stays
    assert due(world, doc) == "2026-11-28"


def _young(n: int) -> dict[str, Any]:
    return {**finding(n), "FirstObservedAt": iso(NOW - timedelta(minutes=30))}


def _waiting(world: World, cfg: Any) -> list[Any]:
    return RetryQueue(world.syncer(cfg).ledger).waiting_for_age()


def test_a_young_finding_is_ticketed_once_of_age_without_security_hub_changing_it(world: World) -> None:
    cfg = config(world, min_age="2h")
    provider = Provider(world)
    doc = provider.send(_young(1))
    report = world.cycle(cfg)
    assert (report.created, report.waiting, report.errors) == (0, 1, [])  # not an error: exit code 0
    assert world.issues() == [] and world.sandbox.jira_app.calls.get("POST /rest/api/{v}/issue/bulk", 0) == 0
    # Older findings move the read cursor on (past the overlap), so only the waiting row can bring it back.
    old = [provider.send(finding(n)) for n in range(100, 115)]
    assert world.cycle(cfg).created == len(old)
    (row,) = _waiting(world, cfg)
    assert row.finding_id == doc["Id"] and row.next_try == (NOW + timedelta(minutes=90)).timestamp()
    syncer = world.syncer(cfg)
    assert all(n == 0 for n in syncer.retry.counts().values())  # not a stuck item

    world.now = NOW + timedelta(minutes=60)  # still too young: another cycle (a new process) changes nothing
    report = world.cycle(cfg)
    assert (report.created, report.errors) == (0, [])

    world.now = NOW + timedelta(hours=2)  # of age; Security Hub has not touched the finding since the first read
    report = world.cycle(cfg)
    # What the changes query re-reads is the cursor's 10-minute overlap, which the young finding is not in; it was
    # read once more, by id, from its waiting row.
    since = datetime.fromisoformat(old[-1]["UpdatedAt"]) - timedelta(minutes=10)
    assert datetime.fromisoformat(doc["UpdatedAt"]) < since
    overlap = sum(datetime.fromisoformat(d["UpdatedAt"]) >= since for d in old)
    assert (report.created, report.read, report.errors) == (1, overlap + 1, [])
    issue = world.issue_for(doc["Id"])
    assert FindingKey(doc["ProductArn"], doc["Id"]).label in issue["labels"]
    assert _waiting(world, cfg) == []
    world.now = NOW + timedelta(hours=3)
    assert world.cycle(cfg).created == 0 and len(world.issues()) == 1 + len(old)


def test_a_young_finding_that_goes_away_before_its_time_never_gets_an_issue(world: World) -> None:
    cfg = config(world, min_age="2h")
    provider = Provider(world)
    archived, resolved = provider.send(_young(1)), provider.send(_young(2))
    kept = provider.send(_young(3))
    assert world.cycle(cfg).waiting == 3
    provider.send({**archived, "RecordState": "ARCHIVED"})
    world.client().batch_update_findings(  # a person resolves the other in the console (UpdatedAt stays)
        FindingIdentifiers=[{"Id": resolved["Id"], "ProductArn": resolved["ProductArn"]}],
        Workflow={"Status": "RESOLVED"})
    world.now = NOW + timedelta(hours=3)
    report = world.cycle(cfg)
    assert (report.created, report.errors) == (1, [])
    assert [i["labels"] for i in world.issues() if FindingKey(kept["ProductArn"], kept["Id"]).label in i["labels"]]
    assert len(world.issues()) == 1
    assert _waiting(world, cfg) == []
