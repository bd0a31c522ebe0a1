"""Due dates (`sla:`), vulnerability conditions and `min_age`, in the pure core: no servers, `now` injected."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from prometheus_client import generate_latest

from sh2jira.audit import audit
from sh2jira.config import ConfigError, config_json_schema, load_config
from sh2jira.explain import explain_finding, planned
from sh2jira.finding import Finding
from sh2jira.ledger import CREATING, OPEN
from sh2jira.metrics import Metrics
from sh2jira.ocsf import parse_ocsf
from sh2jira.plan import decode_fingerprint, plan_page
from sh2jira.retry_queue import MIN_AGE, RetryQueue
from sh2jira.rulebook import Rulebook, decide
from sh2jira.sla import due_date, duration_problem, kept_due, parse_duration, show, waits_until
from tests.fixtures.ledgers import moto_server, new_ledger  # noqa: F401
from tests.paths import ASFF_DIR
from tests.test_plan import raw

OCSF_DIR = ASFF_DIR.parent / "ocsf"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SLA = {"CRITICAL": "7d", "HIGH": "30d", "MEDIUM": "90d"}


def rulebook(**over: Any) -> Rulebook:
    doc: dict[str, Any] = {"defaults": {"project": "SEC"}, "sla": SLA, "rules": [
        {"name": "exploitable", "match": {"exploit_available": True}, "sla": {"CRITICAL": "3d", "HIGH": "7d"}},
    ]}
    return Rulebook.model_validate({**doc, **over})


def asff(name: str) -> dict[str, Any]:
    doc = json.loads((ASFF_DIR / name).read_text())
    doc = doc[0] if isinstance(doc, list) else doc
    return dict(doc["Findings"][0] if "Findings" in doc else doc)


def inspector(**vuln: Any) -> Finding:
    """A real Inspector finding (Log4Shell) with its first vulnerability's fields changed."""
    doc = copy.deepcopy(asff("custodian-inspector2-ecr-log4j-cve-2021-44228.json"))
    doc["Vulnerabilities"][0].update(vuln)
    return Finding.parse(doc)


# --- durations ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "span"), [
    ("7d", timedelta(days=7)), ("36h", timedelta(hours=36)), ("90m", timedelta(minutes=90)),
    ("1d12h", timedelta(days=1, hours=12)), ("0m", timedelta(0)),
])
def test_durations_parse(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span
    assert duration_problem(text) is None
    assert parse_duration(show(span)) == span


@pytest.mark.parametrize("text", ["7", "7x", "d7", "7 d", "-1d", "1.5d", "", "7D", "1w"])
def test_bad_durations_are_named(text: str) -> None:
    problem = duration_problem(text)
    assert problem is not None and repr(text) in problem and "like 7d, 36h, 90m" in problem
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_a_duration_over_ten_years_is_refused() -> None:
    assert "ten years" in (duration_problem("4000d") or "")


HEAD = "securityhub:\n  regions: [us-east-1]\njira:\n  url: https://example.atlassian.net\n  user: bot@example.com\n"


@pytest.mark.parametrize(("body", "where", "says"), [
    ("  sla: {CRITICAL: 7x}\n", "c.yaml:8: rulebook.sla.CRITICAL", "'7x' is not a duration"),
    ("  sla: {URGENT: 7d}\n", "c.yaml:8: rulebook.sla.URGENT", ""),
    ("  sla: {HIGH: 0d}\n", "c.yaml:8: rulebook.sla.HIGH", "zero"),
    ("  min_age: 2 hours\n", "c.yaml:8: rulebook.min_age", "is not a duration"),
    ("  rules:\n    - name: r\n      match: {epss_min: 1.5}\n", "c.yaml:10: rulebook.rules[0].match.epss_min", ""),
    ("  rules:\n    - name: r\n      match: {exploit_available: yes please}\n",
     "c.yaml:10: rulebook.rules[0].match.exploit_available", ""),
    ("  rules:\n    - name: r\n      action: skip\n      sla: {HIGH: 1d}\n", "rulebook.rules[0].sla", "skip"),
    ("  rules:\n    - name: r\n      min_age: 1hour\n", "c.yaml:10: rulebook.rules[0].min_age", "not a duration"),
])
def test_bad_values_are_refused_with_key_and_line(body: str, where: str, says: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(HEAD + "rulebook:\n  defaults: {project: SEC}\n" + body)
    with pytest.raises(ConfigError) as caught:
        load_config("c.yaml")
    (problem,) = str(caught.value).splitlines()
    assert where in problem and says in problem


# --- due dates ----------------------------------------------------------------------------------------------

def test_due_date_counts_from_first_observed_in_utc() -> None:
    f = Finding.parse(raw(FirstObservedAt="2026-11-20T23:30:00+02:00", CreatedAt="2026-11-25T00:00:00Z"))
    assert due_date(f, timedelta(days=7)) == "2026-11-27"  # 21:30 UTC on the 20th, plus 7 days
    assert due_date(f, timedelta(hours=36)) == "2026-11-22"


def test_due_date_falls_back_to_created_at_and_is_empty_without_either() -> None:
    doc = raw(CreatedAt="2026-11-25T10:00:00Z")
    del doc["FirstObservedAt"]
    assert due_date(Finding.parse(doc), timedelta(days=1)) == "2026-11-26"
    del doc["CreatedAt"]
    assert due_date(Finding.parse(doc), timedelta(days=1)) == ""


def test_create_carries_the_severity_sla_and_an_exploit_rule_shortens_it() -> None:
    rb = rulebook()
    (plain,) = plan_page([Finding.parse(raw())], rb, {}, {}, now=NOW).creates  # HIGH, first seen 2026-11-20
    assert plain.draft.due_date == "2026-12-20"
    assert decode_fingerprint(plain.entry.fingerprint)["due"] == "2026-12-20"
    exploitable = inspector(ExploitAvailable="YES")  # CRITICAL, first observed 2022-01-17T16:03
    (short,) = plan_page([exploitable], rb, {}, {}, now=NOW).creates
    assert short.draft.due_date == "2022-01-20"
    assert "due 3d after first seen" in decide(rb, exploitable).trace[-1]
    no_exploit = plan_page([inspector(ExploitAvailable="NO")], rb, {}, {}, now=NOW).creates[0]
    assert no_exploit.draft.due_date == "2022-01-24"


def test_a_label_without_sla_gets_no_due_date() -> None:
    (c,) = plan_page([Finding.parse(raw(Severity={"Label": "LOW"}))], rulebook(), {}, {}, now=NOW).creates
    assert c.draft.due_date == "" and "due" not in decode_fingerprint(c.entry.fingerprint)


def _tracked(create_entry: Any) -> Any:
    return create_entry.with_(state=OPEN, issue_key="SEC-1")


def test_severity_rise_moves_the_due_date_earlier_with_a_comment() -> None:
    rb = rulebook()
    (c,) = plan_page([Finding.parse(raw())], rb, {}, {}, now=NOW).creates
    entry = _tracked(c.entry)
    worse = Finding.parse(raw(Severity={"Label": "CRITICAL"}, UpdatedAt="2026-11-28T00:00:00Z"))
    (up,) = plan_page([worse], rb, {entry.key: entry}, {}, now=NOW).updates
    assert up.fields["duedate"] == "2026-11-27"
    assert up.comment is not None and "Due date moved earlier, from 2026-12-20 to 2026-11-27" in up.comment
    assert "severity rose from HIGH to CRITICAL" in up.comment and "priority" in up.comment
    assert decode_fingerprint(up.entry.fingerprint)["due"] == "2026-11-27"


def test_severity_drop_keeps_the_due_date() -> None:
    rb = rulebook()
    (c,) = plan_page([Finding.parse(raw(Severity={"Label": "CRITICAL"}))], rb, {}, {}, now=NOW).creates
    entry = _tracked(c.entry)
    lower = Finding.parse(raw(Severity={"Label": "MEDIUM"}, UpdatedAt="2026-11-28T00:00:00Z"))
    (up,) = plan_page([lower], rb, {entry.key: entry}, {}, now=NOW).updates
    assert "duedate" not in up.fields and "Due date" not in (up.comment or "")
    assert decode_fingerprint(up.entry.fingerprint)["due"] == "2026-11-27"


def test_a_tracked_finding_that_becomes_exploitable_gets_the_shorter_date() -> None:
    rb = rulebook()
    (c,) = plan_page([inspector(ExploitAvailable="NO")], rb, {}, {}, now=NOW).creates
    entry = _tracked(c.entry)
    (up,) = plan_page([inspector(ExploitAvailable="YES")], rb, {entry.key: entry}, {}, now=NOW).updates
    assert up.fields == {"duedate": "2022-01-20"}
    assert up.comment is not None and "shorter SLA" in up.comment


def test_an_issue_sh2jira_did_not_date_is_never_dated_later() -> None:
    (c,) = plan_page([Finding.parse(raw())], rulebook(sla={}), {}, {}, now=NOW).creates
    entry = _tracked(c.entry)
    worse = Finding.parse(raw(Severity={"Label": "CRITICAL"}, UpdatedAt="2026-11-28T00:00:00Z"))
    (up,) = plan_page([worse], rulebook(), {entry.key: entry}, {}, now=NOW).updates
    assert "duedate" not in up.fields


def test_kept_due_only_moves_earlier() -> None:
    assert kept_due("2026-12-20", "2026-11-27") == "2026-11-27"
    assert kept_due("2026-11-27", "2026-12-20") == "2026-11-27"
    assert kept_due("2026-11-27", "") == "2026-11-27"
    assert kept_due("", "2026-11-27") == ""


def test_an_unchanged_reread_writes_nothing() -> None:
    rb = rulebook()
    (c,) = plan_page([Finding.parse(raw())], rb, {}, {}, now=NOW).creates
    entry = _tracked(c.entry)
    plan = plan_page([Finding.parse(raw())], rb, {entry.key: entry}, {}, now=NOW)
    assert plan.updates == [] and plan.unchanged == 1


# --- vulnerability conditions ------------------------------------------------------------------------------

def test_asff_vulnerability_fields_are_read() -> None:
    (v,) = Finding.parse(asff("defectdojo-inspector2-ecr-openssl-1024-desc.json")).vulnerabilities
    assert v.exploit_available is False and v.epss == 0.0014 and v.known_exploited is False
    (log4j,) = inspector(LastKnownExploitAt="2024-05-01T00:00:00Z").vulnerabilities
    assert log4j.id == "CVE-2021-44228" and log4j.known_exploited and log4j.exploit_available is None


@pytest.mark.parametrize(("field", "value", "says"), [
    ("ExploitAvailable", "MAYBE", "Vulnerabilities[0].ExploitAvailable is not YES or NO"),
    ("EpssScore", "high", "Vulnerabilities[0].EpssScore is not a number from 0 to 1"),
    ("EpssScore", 7, "Vulnerabilities[0].EpssScore is not a number from 0 to 1"),
])
def test_a_bad_vulnerability_field_is_logged_as_unknown_and_the_finding_still_parses(
        field: str, value: Any, says: str, caplog: pytest.LogCaptureFixture) -> None:
    """Never fatal: a finding dropped as invalid would get no issue, or its issue would never resolve."""
    (v,) = inspector(**{field: value}).vulnerabilities
    assert (v.exploit_available if field == "ExploitAvailable" else v.epss) is None
    assert says in caplog.text
    assert _match({"exploit_available": True}, inspector(**{field: value}))[0] is False


def _match(match: dict[str, Any], f: Finding) -> tuple[bool, str]:
    rb = Rulebook.model_validate({"defaults": {"project": "SEC"}, "unmatched": "skip",
                                  "rules": [{"name": "r", "match": match}]})
    decision = decide(rb, f)
    return decision.rule == "r", decision.trace[0]


@pytest.mark.parametrize(("match", "vuln", "hit", "why"), [
    ({"exploit_available": True}, {"ExploitAvailable": "YES"}, True, "has an exploit available"),
    ({"exploit_available": True}, {"ExploitAvailable": "NO"}, False, "no vulnerability (CVE-2021-44228)"),
    ({"exploit_available": False}, {"ExploitAvailable": "NO"}, True, "no vulnerability"),
    ({"known_exploited": True}, {"LastKnownExploitAt": "2025-01-01T00:00:00Z"}, True, "known to be exploited"),
    ({"known_exploited": True}, {}, False, "no vulnerability"),
    ({"known_exploited": False}, {}, True, "no vulnerability"),
    ({"epss_min": 0.5}, {"EpssScore": 0.97}, True, "EPSS 0.97 >= 0.5"),
    ({"epss_min": 0.5}, {"EpssScore": 0.5}, True, "EPSS 0.5 >= 0.5"),
    ({"epss_min": 0.5}, {"EpssScore": 0.1}, False, "the highest is 0.1"),
    ({"epss_min": 0.5}, {}, False, "no vulnerability has an EPSS score"),
])
def test_vulnerability_matchers_on_asff(match: dict[str, Any], vuln: dict[str, Any], hit: bool, why: str) -> None:
    ok, trace = _match(match, inspector(**vuln))
    assert ok is hit and why in trace


def test_a_finding_without_vulnerabilities_is_not_exploitable() -> None:
    control = Finding.parse(raw())
    assert _match({"exploit_available": True}, control)[0] is False
    assert _match({"exploit_available": False}, control)[0] is True
    assert _match({"epss_min": 0}, control)[0] is False


def _ocsf(**vuln: Any) -> Finding:
    doc = json.loads((OCSF_DIR / "cruxstack-cspm-cis-config1-fail-critical.json").read_text())
    doc = doc[0] if isinstance(doc, list) else doc
    doc = copy.deepcopy(doc.get("detail", {}).get("findings", [doc])[0] if "detail" in doc else doc)
    doc["vulnerabilities"] = [{"cve": {"uid": "CVE-2024-0001", "epss": {"score": "0.61"}}, **vuln}]
    return parse_ocsf(doc)


@pytest.mark.parametrize(("match", "vuln", "hit"), [
    ({"exploit_available": True}, {"is_exploit_available": True}, True),
    ({"exploit_available": True}, {"is_exploit_available": False}, False),
    ({"known_exploited": True}, {"exploit_last_seen_time_dt": "2025-06-01T00:00:00.000Z"}, True),
    ({"known_exploited": True}, {}, False),
    ({"epss_min": 0.6}, {}, True),
    ({"epss_min": 0.7}, {}, False),
])
def test_the_same_conditions_match_ocsf(match: dict[str, Any], vuln: dict[str, Any], hit: bool) -> None:
    assert _match(match, _ocsf(**vuln))[0] is hit


def test_a_bad_ocsf_exploit_flag_is_logged_as_unknown(caplog: pytest.LogCaptureFixture) -> None:
    (v,) = _ocsf(is_exploit_available="yes").vulnerabilities
    assert v.exploit_available is None and v.epss == 0.61
    assert "vulnerabilities[0].is_exploit_available is not true or false" in caplog.text


# --- min_age ------------------------------------------------------------------------------------------------

def young(minutes: int, **over: Any) -> Finding:
    first = (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return Finding.parse(raw(FirstObservedAt=first, CreatedAt=first, **over))


def test_a_young_finding_waits_and_says_until_when() -> None:
    rb = rulebook(min_age="2h")
    plan = plan_page([young(30)], rb, {}, {}, now=NOW)
    assert plan.creates == [] and plan.skips == []
    (wait,) = plan.waits
    assert wait.until == NOW + timedelta(minutes=90)
    assert wait.reason == "waits for min_age until 2026-11-28T13:30:00Z"


def test_it_is_ticketed_once_of_age() -> None:
    rb = rulebook(min_age="2h")
    assert len(plan_page([young(120)], rb, {}, {}, now=NOW).creates) == 1
    assert len(plan_page([young(30)], rb, {}, {}, now=NOW + timedelta(minutes=90)).creates) == 1


def test_a_rule_overrides_the_default_min_age() -> None:
    rb = rulebook(min_age="2h", rules=[{"name": "exploitable", "match": {"severity": ["HIGH"]}, "min_age": "0m"},
                                       {"name": "slow", "match": {"severity": ["LOW"]}, "min_age": "1d"}])
    assert len(plan_page([young(1)], rb, {}, {}, now=NOW).creates) == 1
    assert plan_page([young(180, Severity={"Label": "LOW"})], rb, {}, {}, now=NOW).waits
    assert plan_page([young(30, Severity={"Label": "MEDIUM"})], rb, {}, {}, now=NOW).waits


def test_what_would_be_skipped_anyway_does_not_wait() -> None:
    rb = rulebook(min_age="2h")
    plan = plan_page([young(10, RecordState="ARCHIVED")], rb, {}, {}, now=NOW)
    assert plan.waits == [] and "ARCHIVED" in plan.skips[0].reason


def test_a_tracked_finding_never_waits() -> None:
    rb = rulebook(min_age="2h")
    (c,) = plan_page([young(10)], rulebook(), {}, {}, now=NOW).creates
    entry = c.entry.with_(state=OPEN, issue_key="SEC-1")
    plan = plan_page([young(10, Severity={"Label": "CRITICAL"})], rb, {entry.key: entry}, {}, now=NOW)
    assert plan.waits == [] and len(plan.updates) == 1
    assert c.entry.state == CREATING


def test_waits_until_without_an_age_tickets_now() -> None:
    doc = raw()
    del doc["FirstObservedAt"], doc["CreatedAt"]
    assert waits_until(Finding.parse(doc), timedelta(hours=2), NOW) is None
    assert waits_until(young(1), None, NOW) is None


def test_planning_without_now_leaves_min_age_out() -> None:
    assert plan_page([young(1)], rulebook(min_age="2h"), {}, {}).creates


# --- where waiting findings are kept ------------------------------------------------------------------------

def test_waiting_rows_survive_a_restart_and_are_not_stuck_items(new_ledger: Any) -> None:
    ledger = new_ledger()
    queue = RetryQueue(ledger, clock=lambda: 1000.0)
    queue.wait_for_age([("k1", "f1", "arn:p", "us-east-1", 5000.0), ("k2", "f2", "arn:p", "us-east-1", 3000.0)])
    queue.failed("update", None, "500 from Jira", key="k3", finding_id="f3")
    again = RetryQueue(new_ledger(), clock=lambda: 1000.0)  # another process, the same ledger
    assert [(i.finding_id, i.next_try) for i in again.waiting_for_age()] == [("f2", 3000.0), ("f1", 5000.0)]
    assert json.loads(again.waiting_for_age()[0].payload) == {"product_arn": "arn:p"}
    assert [i.kind for i in again.stuck()] == ["update"]
    assert sum(again.counts().values()) == 1 and MIN_AGE not in again.counts()
    assert [i.finding_id for i in new_ledger().due_retries(4000.0) if i.kind == MIN_AGE] == ["f2"]


def test_explain_says_until_when_a_finding_waits() -> None:
    cfg = SimpleNamespace(rulebook=rulebook(min_age="2h"), securityhub=SimpleNamespace(link_back="full"))
    line, plan = planned(cfg, young(30), now=NOW)
    assert line.startswith("WAIT") and line.endswith("waits for min_age until 2026-11-28T13:30:00Z")
    assert planned(cfg, young(30), now=NOW + timedelta(hours=2))[0].startswith("CREATE")


def test_reconcile_does_not_count_a_waiting_finding_as_missing() -> None:
    rb = rulebook(min_age="2h")
    assert audit([young(30)], [], [], rb, now=NOW).missing == []
    assert audit([young(30)], [], [], rb, now=NOW + timedelta(hours=2)).missing == [young(30).id]


def test_the_waiting_gauge_is_apart_from_the_stuck_items() -> None:
    metrics = Metrics()
    metrics.set_waiting(3)
    text = generate_latest(metrics.registry).decode()
    assert "sh2jira_waiting_findings 3.0" in text


def test_the_json_schema_agrees_for_editors() -> None:
    validator = jsonschema.Draft202012Validator(config_json_schema())
    base = {"securityhub": {"regions": ["us-east-1"]}, "jira": {"url": "https://x.atlassian.net", "user": "a@b.c"}}

    def errors(rb: dict[str, Any]) -> int:
        return sum(1 for _ in validator.iter_errors({**base, "rulebook": {"defaults": {"project": "SEC"}, **rb}}))

    good = {"sla": SLA, "min_age": "2h", "rules": [{"name": "r", "match": {"epss_min": 0.5, "known_exploited": True},
                                                    "sla": {"CRITICAL": "1d12h"}, "min_age": "0m"}]}
    assert errors(good) == 0
    assert errors({"sla": {"HIGH": "7x"}}) == 1
    assert errors({"min_age": "2 hours"}) == 1
    assert errors({"rules": [{"name": "r", "action": "skip", "min_age": "1h"}]}) == 1
    assert errors({"rules": [{"name": "r", "match": {"epss_min": 2}}]}) == 1


def test_explain_shows_the_due_date() -> None:
    cfg = SimpleNamespace(rulebook=rulebook(), securityhub=SimpleNamespace(link_back="full", regions=["us-east-1"],
                                                                            aggregation=False, accounts=[]))
    out = io.StringIO()
    explain_finding(cfg, inspector(ExploitAvailable="YES"), out)
    text = out.getvalue()
    assert "due 3d after first seen" in text and '"duedate": "2022-01-20"' in text
