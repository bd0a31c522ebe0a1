"""The new Security Hub (GetFindingsV2, OCSF) as a source, end to end on Jira Cloud and Data Center: one issue
per ticketable V2 finding, one issue for a finding both Security Hubs carry, closure both ways, recurrence,
findings resolved in the console, and findings Security Hub deleted (the 14-day window)."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import timedelta
from typing import Any

import pytest

from sh2jira.finding import FindingKey
from tests.e2e.world import NOW, Provider, World, cli_env, finding, sandbox, world  # noqa: F401
from tests.fixtures.ocsf import dt, ms, ocsf_finding
from tests.paths import OCSF_DIR

PRODUCT = "arn:aws:securityhub:us-east-1::product/aws/securityhub"


class V2Provider:
    """Sends OCSF findings the way the new Security Hub stores them: every send moves modified_time."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.minutes = itertools.count(1)

    def send(self, doc: dict[str, Any]) -> dict[str, Any]:
        sent = copy.deepcopy(doc)
        when = NOW - timedelta(hours=3) + timedelta(minutes=next(self.minutes))
        sent["finding_info"].update(modified_time_dt=dt(when), modified_time=ms(when))
        sent.update(time_dt=dt(when), time=ms(when))
        result = self.world.sandbox.securityhub_app.v2.load([sent])
        assert result["FailedCount"] == 0, result
        return sent


def v2(world: World, uid: str) -> dict[str, Any]:
    (found,) = [f for f in world.sandbox.securityhub_app.v2.findings() if f["finding_info"]["uid"] == uid]
    return found


def issue_of(world: World, uid: str, product_arn: str = PRODUCT) -> dict[str, Any]:
    label = FindingKey(product_arn, uid).label
    matches = [i for i in world.issues() if label in i["labels"]]
    assert len(matches) == 1, f"{len(matches)} issues carry {label}"
    return world.sandbox.jira_app.issue(matches[0]["key"])


def real_samples() -> list[dict[str, Any]]:
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(OCSF_DIR.glob("*.json"))]
    return [d["detail"]["findings"][0] if "detail" in d else d for d in docs]


@pytest.fixture
def tracked(world: World) -> tuple[World, V2Provider, list[dict[str, Any]]]:
    provider = V2Provider(world)
    docs = [provider.send(ocsf_finding(n)) for n in range(3)]
    report = world.cycle(world.config(source="v2"))
    assert report.created == 3 and report.invalid == 0
    return world, provider, docs


def test_v2_every_ticketable_finding_gets_exactly_one_issue(world: World) -> None:
    provider = V2Provider(world)
    sent = [provider.send(d) for d in real_samples()]
    sent += [provider.send(ocsf_finding(n)) for n in range(4)]
    sent.append(provider.send(ocsf_finding(10, severity_id=1)))  # a rule skips INFORMATIONAL
    cfg = world.config(source="v2")
    report = world.cycle(cfg)
    # Ticketable: the 4 controls, the failing CIS control, the active GuardDuty finding. Not: the passed coverage
    # finding, GuardDuty activity Close, the suppressed GuardDuty finding, the informational control.
    assert report.created == 6 and report.invalid == 0
    assert len(world.issues()) == 6
    for doc in sent:
        key = FindingKey(doc["metadata"]["product"]["uid"].replace(":productv2/", ":product/"),
                         doc["finding_info"]["uid"])
        carrying = [i for i in world.issues() if key.label in i["labels"]]
        assert len(carrying) <= 1
    gd = issue_of(world, sent[3]["finding_info"]["uid"], "arn:aws:securityhub:us-east-1::product/aws/guardduty")
    assert gd["issuetype"] == "Bug"  # the GuardDuty rule matched the V2 finding
    linked = v2(world, sent[-2]["finding_info"]["uid"])
    key = issue_of(world, linked["finding_info"]["uid"])["key"]
    assert linked["status"] == "In Progress"
    assert linked["comment"].startswith(f"Tracked in Jira as {key}: ") and key in linked["comment"].rsplit("/", 1)[1]
    world.reset_counts()
    again = world.cycle(cfg)
    assert again.created == 0 and world.jira_writes() == 0
    assert world.sh_calls("BatchUpdateFindingsV2") == 0  # nothing is linked twice


def test_closed_by_the_provider_resolves_then_recurrence_reopens_the_same_issue(tracked: Any) -> None:
    world, provider, docs = tracked
    cfg = world.config(source="v2")
    doc = docs[0]
    key = issue_of(world, doc["finding_info"]["uid"])["key"]
    provider.send({**doc, "activity_name": "Close", "activity_id": 3})
    assert world.cycle(cfg).resolved == 1
    got = issue_of(world, doc["finding_info"]["uid"])
    assert got["statusCategory"] == "done" and any("archived" in c["body"] for c in got["comments"])
    provider.send({**doc, "activity_name": "Update", "activity_id": 2})  # back: the status goes to New
    assert v2(world, doc["finding_info"]["uid"])["status"] == "New"
    report = world.cycle(cfg)
    assert report.reopened == 1 and report.created == 0
    got = issue_of(world, doc["finding_info"]["uid"])
    assert got["key"] == key and got["statusCategory"] != "done"
    assert v2(world, doc["finding_info"]["uid"])["status"] == "In Progress"
    assert len(world.issues()) == 3


def test_passed_control_resolves_its_issue(tracked: Any) -> None:
    world, provider, docs = tracked
    provider.send({**docs[1], "compliance": {**docs[1]["compliance"], "status": "Pass", "status_id": 1}})
    assert world.cycle(world.config(source="v2")).resolved == 1
    assert issue_of(world, docs[1]["finding_info"]["uid"])["statusCategory"] == "done"


@pytest.mark.parametrize(("resolution", "status"), [("Done", "Resolved"), ("Won't Do", "Suppressed")])
def test_done_in_jira_sets_the_v2_status_with_a_comment(tracked: Any, resolution: str, status: str) -> None:
    world, _, docs = tracked
    uid = docs[0]["finding_info"]["uid"]
    key = issue_of(world, uid)["key"]
    world.sandbox.jira_app.transition_issue(key, "Done", resolution=resolution, as_user="alice")
    report = world.cycle(world.config(source="v2"))
    assert report.from_jira == 1 and report.resolved == 0
    found = v2(world, uid)
    assert found["status"] == status
    assert key in found["comment"] and resolution in found["comment"] and "Alice" in found["comment"]
    world.sandbox.jira_app.transition_issue(key, "Reopen")
    assert world.cycle(world.config(source="v2")).from_jira == 1
    assert v2(world, uid)["status"] == "In Progress" and "reopened" in v2(world, uid)["comment"]


@pytest.mark.parametrize("status_id", [3, 4])
def test_resolved_in_the_console_resolves_the_issue(tracked: Any, status_id: int) -> None:
    """BatchUpdateFindingsV2 leaves modified_time alone: the check of open issues by id sees it."""
    world, _, docs = tracked
    uid = docs[2]["finding_info"]["uid"]
    world.client().batch_update_findings_v2(FindingIdentifiers=[{
        "CloudAccountUid": "111122223333", "FindingInfoUid": uid,
        "MetadataProductUid": docs[2]["metadata"]["product"]["uid"]}], StatusId=status_id, Comment="done here")
    report = world.cycle(world.config(source="v2"))
    assert report.resolved == 1
    assert issue_of(world, uid)["statusCategory"] == "done"
    assert world.cycle(world.config(source="v2")).resolved == 0


def test_a_finding_security_hub_deleted_resolves_its_issue_saying_so(tracked: Any) -> None:
    world, _, docs = tracked
    uid = docs[1]["finding_info"]["uid"]
    app = world.sandbox.securityhub_app
    old = NOW - timedelta(days=20)  # closed long ago, unseen (sh2jira was down): past the 14 days
    app.v2.tamper(uid, lambda d: (d.update(activity_name="Close"),
                                  d["finding_info"].update(modified_time_dt=dt(old))))
    assert all(f["finding_info"]["uid"] != uid for f in app.v2.findings())
    report = world.cycle(world.config(source="v2"))
    assert report.resolved == 1 and report.created == 0
    got = issue_of(world, uid)
    assert got["statusCategory"] == "done"
    assert any("no longer exists in Security Hub" in c["body"] for c in got["comments"])
    assert issue_of(world, docs[0]["finding_info"]["uid"])["statusCategory"] != "done"


def test_with_link_back_off_a_deleted_finding_still_resolves_its_issue(world: World) -> None:
    provider = V2Provider(world)
    doc = provider.send(ocsf_finding(5))
    cfg = world.config(source="v2", link_back="'off'")  # quoted: YAML reads off as false
    assert world.cycle(cfg).created == 1
    assert "comment" not in v2(world, doc["finding_info"]["uid"])
    old = NOW - timedelta(days=20)
    world.sandbox.securityhub_app.v2.tamper(doc["finding_info"]["uid"], lambda d: (
        d.update(activity_name="Close"), d["finding_info"].update(modified_time_dt=dt(old))))
    assert world.cycle(cfg).resolved == 1


def test_both_one_issue_for_a_finding_in_cspm_and_v2(world: World) -> None:
    cspm, provider = Provider(world), V2Provider(world)
    shared = [cspm.send(finding(n)) for n in range(3)]
    for n in range(3):
        provider.send(ocsf_finding(n))
    only_cspm = cspm.send(finding(7))
    only_v2 = provider.send(ocsf_finding(8))
    cfg = world.config(source="both")
    report = world.cycle(cfg)
    assert report.created == 5 and len(world.issues()) == 5
    for doc in [*shared, only_cspm]:
        assert world.issue_for(doc["Id"], doc["ProductArn"])
    issue_of(world, only_v2["finding_info"]["uid"])
    # The CSPM copy is the source of record of a shared finding: its link-back is on the CSPM side.
    assert world.finding(shared[0]["Id"])["Workflow"]["Status"] == "NOTIFIED"
    assert "comment" not in v2(world, shared[0]["Id"])  # its V2 copy is left alone
    assert v2(world, only_v2["finding_info"]["uid"])["status"] == "In Progress"
    world.reset_counts()
    provider.send(ocsf_finding(0, title="A new title only the V2 copy carries"))
    again = world.cycle(cfg)
    assert again.created == 0 and again.updated == 0 and world.jira_writes() == 0


def test_both_closure_and_recurrence_follow_the_source_of_record(world: World) -> None:
    cspm, provider = Provider(world), V2Provider(world)
    doc = cspm.send(finding(1))
    provider.send(ocsf_finding(1))
    cfg = world.config(source="both")
    world.cycle(cfg)
    key = world.issue_for(doc["Id"], doc["ProductArn"])["key"]
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Won't Do")
    assert world.cycle(cfg).from_jira == 1
    assert world.finding(doc["Id"])["Workflow"]["Status"] == "SUPPRESSED"
    provider.send(ocsf_finding(1, activity="Update"))  # the V2 copy, still New and failing, does not reopen it
    report = world.cycle(cfg)
    assert report.reopened == 0 and report.created == 0
    assert world.sandbox.jira_app.issue(key)["statusCategory"] == "done"


def test_a_cspm_ledger_stays_valid_with_both_and_v2(world: World) -> None:
    cspm, provider = Provider(world), V2Provider(world)
    docs = [cspm.send(finding(n)) for n in range(2)]
    assert world.cycle(world.config()).created == 2  # source: cspm, as before V2
    for n in range(2):
        provider.send(ocsf_finding(n))
    assert world.cycle(world.config(source="both")).created == 0
    assert world.cycle(world.config(source="v2")).created == 0  # V2 takes the issues over
    assert len(world.issues()) == 2
    provider.send(ocsf_finding(0, activity="Close"))
    report = world.cycle(world.config(source="v2"))
    assert report.resolved == 1 and report.created == 0
    assert world.issue_for(docs[0]["Id"], docs[0]["ProductArn"])["key"]
    key = world.issue_for(docs[0]["Id"], docs[0]["ProductArn"])["key"]
    assert world.sandbox.jira_app.issue(key)["statusCategory"] == "done"


@pytest.fixture
def cli(cli_env: World) -> World:
    return cli_env


def test_explain_takes_an_ocsf_finding_and_a_v2_event(cli: World, capsys: Any) -> None:
    from sh2jira.cli import main

    cfg = cli.write_config(source="v2")
    assert main(["explain", "-c", str(cfg), str(OCSF_DIR / "cruxstack-cspm-cis-config1-fail-critical.json")]) == 0
    out = capsys.readouterr().out
    assert "decision: ticket" in out and "h3. Remediation" in out and "Config.1" in out
    assert main(["explain", "-c", str(cfg), str(OCSF_DIR / "sumologic-guardduty-eventbridge-v2.json")]) == 0
    out = capsys.readouterr().out
    assert "workflow is already SUPPRESSED" in out
    bad = cli.tmp / "bad.json"
    bad.write_text(json.dumps({"finding_info": {"uid": "u1", "title": "t"}, "class_uid": 2003}))
    assert main(["explain", "-c", str(cfg), str(bad)]) == 2
    assert "finding u1: metadata.product.uid is missing" in capsys.readouterr().err


def test_dry_run_with_v2_writes_nothing(cli: World, capsys: Any) -> None:
    from sh2jira.cli import main

    V2Provider(cli).send(ocsf_finding(1))
    assert main(["run", "--dry-run", "-c", str(cli.write_config(source="both"))]) == 0
    out = capsys.readouterr().out
    assert "CREATE [SEC/" in out and cli.issues() == []
    assert "comment" not in v2(cli, ocsf_finding(1)["finding_info"]["uid"])


def test_demo_with_the_v2_source(capsys: Any) -> None:
    from sh2jira.cli import main

    assert main(["demo", "--source", "v2"]) == 0
    out = capsys.readouterr().out
    assert "created=4" in out and "Link-backs on V2 findings (4 of 4" in out and "In Progress" in out
    assert main(["demo", "--source", "both", "--flavour", "datacenter"]) == 0
    out = capsys.readouterr().out
    assert "created=9" in out and "Link-backs on findings (8 of 10)" in out  # 3 findings are in both: one issue
    assert "Link-backs on V2 findings (1 of 4" in out


def test_bench_v2_smoke() -> None:
    from bench.v2 import run

    r = run(30)
    assert r["backfill"]["created"] == 30 and r["backfill"]["BatchUpdateFindingsV2"] == 30
    assert r["idle"]["created"] == 0 and r["idle"]["BatchUpdateFindingsV2"] == 0
    assert r["closures"]["resolved"] == r["closures"]["closed"] == 3
    assert r["both"]["created"] == 30 and r["both_idle"]["created"] == 0
