"""`sh2jira preview`: what a rulebook change would do, listed before it is made, writing nothing, and agreeing item
by item with what the next real run then does. End to end on Jira Cloud and Data Center with the real clients."""

from __future__ import annotations

import gc
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from sh2jira.cli import main
from sh2jira.finding import FindingKey
from tests.e2e.world import Provider, World, cli_env, finding, sandbox, world  # noqa: F401

NEW_RULEBOOK = """\
defaults:
  project: SEC
  issue_type: Task
  labels: [security-hub]
priorities: {MEDIUM: Highest}
filters:
  severity: [CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL]
rules:
  - name: no-iam
    match: {control_id: ["IAM.*"]}
    action: skip
  - name: guardduty-to-bugs
    match: {product: [GuardDuty, guardduty]}
    route: {issue_type: Bug, labels: [threat, guardduty]}
  - name: inspector-to-ops
    match: {product: [Inspector]}
    route: {project: OPS, issue_type: Bug}
"""

# IssueDraft field → the stand-in's name for it on an issue (a field not listed has the same name).
JIRA_FIELD = {"issue_type": "issuetype", "custom_fields": "custom"}


def _world_findings(world: World) -> dict[str, dict[str, Any]]:
    """Six findings the default rulebook handles: five get issues, the INFORMATIONAL one is skipped."""
    provider = Provider(world)
    medium = {"Label": "MEDIUM", "Normalized": 40}
    docs = {
        "same": finding(1),  # S3.8 HIGH: no rule matches it in either rulebook
        "priority": {**finding(2), "Severity": medium, "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.1"}},
        "label": {**finding(3), "ProductName": "GuardDuty"},
        "reroute": {**finding(4), "ProductName": "Inspector"},
        "skip": {**finding(5), "Compliance": {"Status": "FAILED", "SecurityControlId": "IAM.1"}},
        "create": {**finding(6), "Severity": {"Label": "INFORMATIONAL", "Normalized": 0}},
    }
    return {name: provider.send(doc) for name, doc in docs.items()}


def _ledger_bytes(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _issues(world: World) -> dict[str, dict[str, Any]]:
    return {i["key"]: i for i in world.issues()}


@pytest.fixture
def changed(cli_env: World) -> dict[str, Any]:
    """A world with tracked issues and a skipped finding, synced by the current rulebook; NEW.yaml beside it."""
    world = cli_env
    world.sandbox.jira_app.add_project("OPS")
    docs = _world_findings(world)
    config = world.write_config()
    syncer = world.syncer()
    report = syncer.run_cycle()
    syncer.ledger.close()  # as a finished `run --once` leaves it: the ledger file is then compared byte for byte
    del syncer
    gc.collect()  # the connections its worker threads opened are closed (and checkpointed) too
    assert (report.created, report.skipped) == (5, 1), report.summary()
    new = world.tmp / "NEW.yaml"
    new.write_text(NEW_RULEBOOK)
    issue_of = {name: world.issue_for(doc["Id"])["key"] for name, doc in docs.items() if name != "create"}
    return {"world": world, "docs": docs, "config": config, "new": new, "issue_of": issue_of}


def _preview(ctx: dict[str, Any], capsys: Any, *extra: str) -> str:
    world: World = ctx["world"]
    ledger = world.tmp / "ledger.sqlite3"
    before = (_ledger_bytes(ledger), _issues(world))
    world.reset_counts()
    assert main(["preview", "-c", str(ctx["config"]), "--rulebook", str(ctx["new"]), *extra]) == 0
    out = capsys.readouterr().out
    # Nothing written anywhere: not one Jira call, no Security Hub write, the ledger file byte for byte.
    assert world.sandbox.jira_app.total_calls() == 0
    assert [world.sh_calls(op) for op in ("BatchUpdateFindings", "BatchImportFindings")] == [0, 0]
    assert world.sh_calls("GetFindings") >= 1
    assert (_ledger_bytes(ledger), _issues(world)) == before
    return out


def _expected(ctx: dict[str, Any]) -> dict[str, str]:
    """finding id → the kind of item the preview must list for it (and nothing for the others)."""
    d = ctx["docs"]
    return {d["priority"]["Id"]: "change", d["label"]["Id"]: "change", d["reroute"]["Id"]: "reroute",
            d["skip"]["Id"]: "skip", d["create"]["Id"]: "create"}


def test_preview_lists_exactly_what_the_new_rulebook_changes_and_writes_nothing(changed: dict[str, Any],
                                                                                 capsys: Any) -> None:
    doc = json.loads(_preview(changed, capsys, "--json"))
    items = {i["finding_id"]: i for i in doc["items"]}
    assert {fid: i["kind"] for fid, i in items.items()} == _expected(changed)
    assert doc["written"] is False and doc["scope_errors"] == []
    assert all(i["next_run"] for i in doc["items"])  # all changed within the next run's read window
    c = doc["counts"]
    assert (c["change"], c["reroute"], c["create"], c["newly_ticketed"], c["skip"], c["tracked_skipped"],
            c["issue_writes"], c["read"]) == (2, 1, 1, 1, 1, 1, 2, 6)
    d, issue_of = changed["docs"], changed["issue_of"]

    prio = items[d["priority"]["Id"]]
    assert prio["issue_key"] == issue_of["priority"]
    assert prio["changes"] == [{"field": "priority", "old": "Medium", "new": "Highest", "written": True}]
    label = items[d["label"]["Id"]]
    (labels,) = label["changes"]
    assert labels["field"] == "labels" and labels["written"]
    assert set(labels["new"]) - set(labels["old"]) == {"guardduty"}
    assert label["writes"]["labels_add"] == ["guardduty"]
    reroute = items[d["reroute"]["Id"]]
    assert {c["field"]: (c["old"], c["new"], c["written"]) for c in reroute["changes"]} == {
        "project": ("SEC", "OPS", False), "issue_type": ("Task", "Bug", False)}
    assert reroute["writes"] == {} and "stays in project SEC" in reroute["note"]
    skip = items[d["skip"]["Id"]]
    assert skip["issue_key"] == issue_of["skip"] and skip["new"] == "skip (rule no-iam)"
    assert skip["writes"] == {} and "stops editing" in skip["note"]
    create = items[d["create"]["Id"]]
    assert create["issue_key"] is None and create["note"] == "skipped today: rule no-informational says skip"
    assert (create["writes"]["project"], create["writes"]["priority"]) == ("SEC", "Lowest")
    assert json.dumps(doc).count(changed["world"].sandbox.jira_token()) == 0


def test_preview_text_names_each_item_and_counts(changed: dict[str, Any], capsys: Any) -> None:
    out = _preview(changed, capsys)
    d, issue_of = changed["docs"], changed["issue_of"]
    lines = {fid: ln for ln in out.splitlines() if (m := re.search(r"\(finding (.+)\)$", ln)) for fid in [m.group(1)]}
    assert set(lines) == set(_expected(changed))
    assert lines[d["priority"]["Id"]].startswith(f"CHANGE  {issue_of['priority']}")
    assert "priority: Medium → Highest" in lines[d["priority"]["Id"]]
    assert lines[d["reroute"]["Id"]].startswith(f"REROUTE {issue_of['reroute']}")
    assert "project: SEC → OPS (not written: kept on the existing issue)" in lines[d["reroute"]["Id"]]
    assert lines[d["skip"]["Id"]].startswith(f"SKIP    {issue_of['skip']}")
    assert lines[d["create"]["Id"]].startswith("CREATE  (new) [SEC/Task/Lowest]")
    assert out.splitlines()[-1].startswith("preview of ")
    assert ("2 issue(s) change, 1 re-routed, 1 to create (1 newly ticketed), 1 skipped (1 tracked issue(s) no "
            "longer edited)") in out and "nothing written" in out


def test_the_next_run_does_what_the_preview_said(changed: dict[str, Any], capsys: Any) -> None:
    world: World = changed["world"]
    doc = json.loads(_preview(changed, capsys, "--json"))
    before = _issues(world)
    changed["world"].write_config(rulebook=NEW_RULEBOOK)  # the change is made
    assert main(["run", "--once", "-c", str(changed["config"])]) == 0
    summary = capsys.readouterr().out
    after = _issues(world)

    creates = [i for i in doc["items"] if i["kind"] == "create"]
    written = [i for i in doc["items"] if i["issue_key"] and i["writes"]]
    assert f"created={len(creates)} " in summary and f"updated={len(written)} " in summary
    new_keys = set(after) - set(before)
    assert len(new_keys) == len(creates)
    for item in creates:
        label = FindingKey(world.finding(item["finding_id"])["ProductArn"], item["finding_id"]).label
        (issue,) = [after[k] for k in new_keys if label in after[k]["labels"]]
        for name, value in item["writes"].items():
            got = issue.get(JIRA_FIELD.get(name, name))
            assert (sorted(got) if isinstance(value, list) else got) == (
                sorted(value) if isinstance(value, list) else value or got), (name, value, got)
    listed = {i["issue_key"]: i for i in doc["items"] if i["issue_key"]}
    for key, old in before.items():
        new = after[key]
        item = listed.get(key)
        if item is None or not item["writes"] or not item["next_run"]:  # not listed, nothing to write, or not read
            # by the next run (re-routed without a write, now skipped, unchanged since the cursor): untouched
            assert new == old, key
            continue
        for change in item["changes"]:
            name = JIRA_FIELD.get(change["field"], change["field"])
            if change["written"]:
                assert (sorted(new[name]) if name == "labels" else new[name]) == (
                    sorted(change["new"]) if name == "labels" else change["new"]), (key, change)
            else:
                assert new[name] == old[name], (key, change)
        for name, value in item["writes"]["fields"].items():
            if name != "description":
                assert new[JIRA_FIELD.get(name, name)] == value
        assert new["project"] == old["project"] and new["issuetype"] == old["issuetype"]


BAD_RULEBOOK = """\
defaults: {project: SEC}
rules:
  - name: typo
    match: {severity: [HGIH]}
"""


def test_a_bad_new_rulebook_is_refused_as_validate_refuses_it(tmp_path: Path, capsys: Any) -> None:
    """Exit 2, each problem as `file:line: key.path: what is wrong`, exactly the lines `validate` prints for that
    rulebook in place; nothing is read or written (no service is even configured to answer)."""
    new = tmp_path / "NEW.yaml"
    new.write_text(BAD_RULEBOOK)
    base = "securityhub: {regions: [us-east-1]}\njira: {url: 'http://127.0.0.1:9', user: a@example.com}\n"
    config = tmp_path / "c.yaml"
    config.write_text(base + "rulebook: {defaults: {project: SEC}}\n")
    assert main(["preview", "-c", str(config), "--rulebook", str(new)]) == 2
    refused = capsys.readouterr().err
    in_place = tmp_path / "in-place.yaml"
    in_place.write_text(base + f"rulebook: {new}\n")
    assert main(["validate", "-c", str(in_place)]) == 2
    assert refused == capsys.readouterr().err
    assert f"{new}:4: rulebook.rules[0].match.severity" in refused
    assert main(["preview", "-c", str(config), "--rulebook", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: cannot read" in capsys.readouterr().err
    assert not (tmp_path / "ledger.sqlite3").exists()


def test_an_item_whose_finding_the_next_run_does_not_read_waits_for_the_findings_next_change(
        cli_env: World, capsys: Any) -> None:
    """A run applies the rulebook to the findings it reads: those changed since its cursor. The preview says which
    items wait for their finding's next change, and the run indeed leaves those alone."""
    world = cli_env
    world.sandbox.jira_app.add_project("OPS")
    provider = Provider(world)
    medium = {"Label": "MEDIUM", "Normalized": 40}
    early = provider.send({**finding(1), "Severity": medium})
    for _ in range(30):  # half an hour later: beyond the next run's re-read window (overlap_minutes, 10)
        next(provider.minutes)
    late = provider.send({**finding(2), "Severity": medium})
    config = world.write_config()
    syncer = world.syncer()
    assert syncer.run_cycle().created == 2
    syncer.ledger.close()
    # A one-day look-back (the findings are days old by the wall clock): the preview reads what the next run
    # reads (since its cursor, less the overlap), and the early finding's open issue by id.
    config.write_text(config.read_text().replace("first_run_lookback_days: 30", "first_run_lookback_days: 1"))
    new = world.tmp / "NEW.yaml"
    new.write_text(NEW_RULEBOOK)
    world.reset_counts()
    assert main(["preview", "-c", str(config), "--rulebook", str(new), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    items = {i["finding_id"]: i for i in doc["items"]}
    assert {fid: (i["kind"], i["next_run"]) for fid, i in items.items()} == {
        early["Id"]: ("change", False), late["Id"]: ("change", True)}
    assert doc["get_findings_calls"] == world.sh_calls("GetFindings") == 2  # the window's page, one id lookup
    assert main(["preview", "-c", str(config), "--rulebook", str(new)]) == 0
    assert "applies when the finding next changes" in capsys.readouterr().out
    before = _issues(world)
    world.write_config(rulebook=NEW_RULEBOOK)
    config.write_text(config.read_text().replace("first_run_lookback_days: 30", "first_run_lookback_days: 1"))
    assert main(["run", "--once", "-c", str(config)]) == 0
    after = _issues(world)
    key_early, key_late = world.issue_for(early["Id"])["key"], world.issue_for(late["Id"])["key"]
    assert after[key_early] == before[key_early]
    assert (before[key_late]["priority"], after[key_late]["priority"]) == ("Medium", "Highest")


# -- grouping: the preview's group creates, joins and group-issue changes are what the next run does ------------

GROUP_RULE = """\
  - name: controls-grouped
    match: {control_id: ["S3.*"]}
    group_by: control
"""


def _grouped_rulebook(priorities: str = "") -> str:
    from tests.e2e.world import DEFAULT_RULEBOOK

    return DEFAULT_RULEBOOK.format(control_findings="by-finding") + GROUP_RULE + priorities


def _plain(text: str) -> str:
    return str(text).replace("\\", "")


def _group_issue(issues: dict[str, dict[str, Any]], group: str) -> dict[str, Any]:
    (issue,) = [i for i in issues.values() if f"sh2jira-{group}" in i["labels"]]
    return issue


def _linked(world: World, finding_id: str) -> str:
    return str((world.finding(finding_id).get("UserDefinedFields") or {}).get("sh2jira_issue", ""))


def test_the_next_run_creates_and_joins_the_groups_the_preview_listed(cli_env: World, capsys: Any) -> None:
    """A rulebook that adds `group_by: control`: the preview's group creates (with their members) and its
    `keep` items are what `run --once` does; then a finding joining a group issue and a priority change on the
    group issues (groups.plan_refresh) are listed and done the same way. Each preview writes nothing."""
    world = cli_env
    provider = Provider(world)
    own = [provider.send(finding(n)) for n in (0, 1)]
    config = world.write_config()
    syncer = world.syncer()
    assert syncer.run_cycle().created == 2
    syncer.ledger.close()
    del syncer
    gc.collect()
    s38 = [provider.send(finding(n)) for n in (2, 3)]
    s31 = provider.send({**finding(4), "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.1"}})
    new = world.tmp / "NEW.yaml"
    new.write_text(_grouped_rulebook())
    ctx = {"world": world, "config": config, "new": new}

    doc = json.loads(_preview(ctx, capsys, "--json"))
    creates = [i for i in doc["items"] if i["kind"] == "create"]
    assert sorted(sorted(i["members"]) for i in creates) == sorted([[s31["Id"]], sorted(d["Id"] for d in s38)])
    assert all(i["group"] and i["issue_key"] is None for i in creates)
    kept = {i["finding_id"]: i for i in doc["items"] if "keeps its own issue" in i["note"]}
    assert set(kept) == {d["Id"] for d in own}
    assert {i["kind"] for i in doc["items"]} <= {"create", "reroute", "keep"}  # members get no item of their own
    assert doc["counts"]["group_creates"] == 2
    before = _issues(world)
    world.write_config(rulebook=_grouped_rulebook())
    assert main(["run", "--once", "-c", str(config)]) == 0
    assert "created=2 " in capsys.readouterr().out
    after = _issues(world)
    assert len(set(after) - set(before)) == 2
    group_key = {}
    for item in creates:
        issue = _group_issue(after, item["group"])
        assert issue["key"] not in before
        for name in ("summary", "priority", "project"):
            assert issue[name] == item["writes"][name], (name, issue[name], item["writes"][name])
        table = _plain(world.sandbox.jira_app.issue(issue["key"])["description"])
        for fid in item["members"]:
            bucket = world.finding(fid)["Resources"][0]["Id"]
            assert bucket in table and _linked(world, fid) == issue["key"]
            group_key[fid] = issue["key"]
    for d in own:  # kept on their own issues, untouched
        key = world.issue_for(d["Id"])["key"]
        assert after[key] == before[key] and _linked(world, d["Id"]) == key

    # A finding joining an existing group issue, and a priority change the groups' refresh makes.
    gc.collect()  # the run's worker connections are closed (and checkpointed) before the ledger is compared
    joiner = provider.send(finding(5))
    new.write_text(_grouped_rulebook("priorities: {HIGH: Highest}\n"))
    doc = json.loads(_preview(ctx, capsys, "--json"))
    items = doc["items"]
    (join,) = [i for i in items if i["kind"] == "join"]
    s38_issue = group_key[s38[0]["Id"]]
    assert (join["finding_id"], join["issue_key"]) == (joiner["Id"], s38_issue)
    group_changes = {i["issue_key"]: i for i in items if i["kind"] == "change" and i["group"]}
    assert set(group_changes) == {s38_issue, group_key[s31["Id"]]}
    for item in group_changes.values():
        assert {c["field"]: (c["old"], c["new"]) for c in item["changes"]} == {"priority": ("High", "Highest")}
        assert item["writes"]["fields"]["priority"] == "Highest"
    assert not any(i["kind"] == "create" for i in items)
    before = _issues(world)
    world.write_config(rulebook=_grouped_rulebook("priorities: {HIGH: Highest}\n"))
    assert main(["run", "--once", "-c", str(config)]) == 0
    summary = capsys.readouterr().out
    written = [i for i in items if i["issue_key"] and i["writes"]]
    assert "created=0 " in summary and f"updated={len(written)} " in summary
    after = _issues(world)
    assert set(after) == set(before)
    for key, item in group_changes.items():
        assert after[key]["priority"] == "Highest" and item["writes"]["comment"]
        comments = [c["body"] for c in world.sandbox.jira_app.issue(key)["comments"]]
        assert sum("so the priority changed from High to Highest" in c for c in comments) == 1
    assert joiner["Resources"][0]["Id"] in _plain(world.sandbox.jira_app.issue(s38_issue)["description"])
    assert _linked(world, joiner["Id"]) == s38_issue
