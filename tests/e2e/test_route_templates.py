"""Issue fields filled from the finding, end to end on Jira Cloud and Data Center with the real clients: a summary
template, a label from the account id, a custom field from a tag and the assignee from a tag land in Jira exactly
so; a changed tag or title updates the summary and labels on the next run, and nothing else."""

from __future__ import annotations

import copy
from typing import Any

from sh2jira.sandbox.jira_model import DEFAULT_USERS
from tests.e2e.world import Provider, World, finding, sandbox, world  # noqa: F401

USERS = {u.handle: u for u in DEFAULT_USERS}


def rulebook(flavour: str) -> str:
    def ref(handle: str) -> str:  # Cloud names a user by account id, Data Center by user name
        return USERS[handle].account_id if flavour == "cloud" else handle

    return f"""\
defaults:
  project: SEC
  issue_type: Task
  summary: "[{{severity}}] {{title}} ({{resource.tags.owner|unowned}})"
  labels: [security-hub, "acct-{{account_id}}", "{{resource.tags.owner}}"]
  fields: {{customfield_10051: "{{resource.tags.owner|unowned}}"}}
  assignee_from_tag: {{tag: owner, map: {{team-a: "{ref('alice')}", team-b: "{ref('bob')}"}}}}
filters:
  severity: [CRITICAL, HIGH, MEDIUM, LOW]
"""


def tagged(n: int, **tags: str) -> dict[str, Any]:
    doc = finding(n)
    doc["Resources"][0]["Tags"] = tags
    return doc


def test_templated_fields_and_assignee_from_tag_land_in_jira_and_follow_the_finding(world: World) -> None:
    provider = Provider(world)
    cfg = world.config(rulebook=rulebook(world.flavour))
    alice, bob = (USERS[h].account_id if world.flavour == "cloud" else h for h in ("alice", "bob"))
    owned = provider.send(tagged(1, owner="team-a"))
    stray = provider.send(tagged(2))
    assert world.cycle(cfg).created == 2

    issue = world.issue_for(owned["Id"])
    assert issue["summary"] == "[HIGH] S3 general purpose buckets should block public access (team-a)"
    assert [lb for lb in issue["labels"] if not lb.startswith("sh2jira")] == \
        ["security-hub", "acct-111122223333", "team-a"]
    assert issue["custom"] == {"customfield_10051": "team-a"}
    assert issue["assignee"] == alice
    other = world.issue_for(stray["Id"])
    assert other["summary"].endswith("(unowned)") and other["custom"] == {"customfield_10051": "unowned"}
    assert "team-a" not in other["labels"] and other["assignee"] is None  # no tag, no fallback, no assignee

    # The owner tag and the title change: the summary and the labels follow; the custom field and the assignee
    # were set at create and stay (people edit them in Jira).
    changed = copy.deepcopy(owned)
    changed["Resources"][0]["Tags"] = {"owner": "team-b"}
    changed["Title"] = "Bucket is public"
    provider.send(changed)
    world.reset_counts()
    report = world.cycle(cfg)
    assert report.updated == 1 and report.created == 0
    issue = world.issue_for(owned["Id"])
    assert issue["summary"] == "[HIGH] Bucket is public (team-b)"
    assert [lb for lb in issue["labels"] if not lb.startswith("sh2jira")] == \
        ["security-hub", "acct-111122223333", "team-b"]
    assert issue["custom"] == {"customfield_10051": "team-a"} and issue["assignee"] == alice
    assert bob != alice

    # Nothing changed since: no write at all.
    provider.send(changed)
    world.reset_counts()
    assert world.cycle(cfg).updated == 0
    assert world.jira_writes() == 0


def test_project_from_tag_routes_new_issues_and_never_moves_an_existing_one(world: World) -> None:
    world.sandbox.jira_app.add_project("OPS")
    book = """\
defaults:
  project: SEC
  project_from_tag: {tag: team, map: {Ops: OPS}}
filters:
  severity: [HIGH]
"""
    provider = Provider(world)
    cfg = world.config(rulebook=book)
    ops = provider.send(tagged(1, team="ops"))
    other = provider.send(tagged(2, team="web"))
    assert world.cycle(cfg).created == 2
    assert world.issue_for(ops["Id"])["project"] == "OPS"  # matched ignoring case
    assert world.issue_for(other["Id"])["project"] == "SEC"  # not in the map, no fallback: the route's own

    moved = copy.deepcopy(ops)
    moved["Resources"][0]["Tags"] = {"team": "web"}
    provider.send(moved)
    report = world.cycle(cfg)
    assert report.created == 0
    assert world.issue_for(ops["Id"])["project"] == "OPS" and len(world.issues()) == 2
