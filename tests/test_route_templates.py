"""Routes filled from the finding (templated summary, labels, components, custom fields; assignee and project from
a tag), in the pure core: the rulebook's validation (key and line), resolution per finding, and the planner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sh2jira.app import rulebook_targets
from sh2jira.config import ConfigError, load_config
from sh2jira.ledger import OPEN
from sh2jira.plan import plan_page
from sh2jira.rulebook import Rulebook, decide, explain
from tests.test_plan import finding, tracked
from tests.test_validation import HEAD

ALICE, BOB = "acct-alice", "acct-bob"
BOOK: dict[str, Any] = {
    "defaults": {
        "project": "SEC", "labels": ["security-hub", "acct-{account_id}"], "summary": "[{severity}] {title}",
        "fields": {"customfield_10051": "{resource.tags.owner|unowned}", "customfield_10052": 7,
                   "customfield_10060": {"value": "{region}"}, "customfield_10061": "{{not a template}}"},
        "assignee": "default-user",
        "assignee_from_tag": {"tag": "owner", "map": {"Team-A": ALICE, "team-b": BOB}, "fallback": None},
    },
    "rules": [
        {"name": "ops", "match": {"resource_tags": {"env": "ops"}}, "route": {"project": "OPS"}},
        {"name": "by-tag", "match": {"resource_tags": {"env": "prod"}},
         "route": {"project_from_tag": {"tag": "owner", "map": {"team-a": "TEAMA"}, "fallback": "TRIAGE"},
                   "labels": ["{resource.tags.owner}"], "components": ["{resource.tags.component|Infrastructure}"]}},
    ],
}


def rulebook(**defaults: Any) -> Rulebook:
    return Rulebook.model_validate({**BOOK, "defaults": {**BOOK["defaults"], **defaults}})


def tags(**values: str) -> list[dict[str, Any]]:
    return [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::b", "Tags": values}]


# --- resolution per finding -------------------------------------------------------------------------------------

def test_every_templated_part_is_rendered_from_the_finding() -> None:
    route = decide(rulebook(), finding(Resources=tags(env="prod", owner=" TEAM-a ", component="Application"))).route
    assert route is not None
    assert route.summary == "[HIGH] S3 buckets should block public access"
    assert route.labels == ("security-hub", "acct-111122223333", "TEAM-a")
    assert route.components == ("Application",)
    assert dict(route.fields) == {"customfield_10051": "TEAM-a", "customfield_10052": 7,
                                  "customfield_10060": {"value": "us-east-1"},
                                  "customfield_10061": "{not a template}"}
    assert route.assignee == ALICE and route.project == "TEAMA"  # tag values match ignoring case and spaces


def test_missing_tag_falls_back_then_to_the_routes_own_values() -> None:
    route = decide(rulebook(), finding(Resources=tags(env="prod"))).route
    assert route is not None
    assert route.project == "TRIAGE"  # project_from_tag's fallback
    assert route.assignee == "default-user"  # no assignee fallback: the route's own assignee
    assert route.labels == ("security-hub", "acct-111122223333")  # the empty label is dropped
    assert route.components == ("Infrastructure",)  # the placeholder's default
    assert route.fields["customfield_10051"] == "unowned"
    unknown = decide(rulebook(assignee_from_tag={"tag": "owner", "map": {"x": ALICE}, "fallback": BOB}),
                     finding(Resources=tags(env="prod", owner="team-z"))).route
    assert unknown is not None and unknown.assignee == BOB and unknown.project == "TRIAGE"


def test_a_templated_custom_field_that_renders_empty_is_not_sent() -> None:
    rb = rulebook(fields={"customfield_10051": "{resource.tags.owner}", "customfield_10052": 7})
    route = decide(rb, finding(Resources=tags())).route
    assert route is not None and dict(route.fields) == {"customfield_10052": 7}


def test_a_rules_own_project_or_assignee_replaces_the_inherited_tag_lookup() -> None:
    rb = rulebook(project_from_tag={"tag": "owner", "map": {"team-a": "TEAMA"}})
    ops = decide(rb, finding(Resources=tags(env="ops", owner="team-a"))).route
    assert ops is not None and ops.project == "OPS" and ops.assignee == ALICE
    rb = Rulebook.model_validate({**BOOK, "rules": [
        {"name": "mine", "route": {"assignee": "someone"}}]})
    mine = decide(rb, finding(Resources=tags(owner="team-a"))).route
    assert mine is not None and mine.assignee == "someone"
    rb = Rulebook.model_validate({**BOOK, "rules": [{"name": "off", "route": {"assignee_from_tag": None}}]})
    off = decide(rb, finding(Resources=tags(owner="team-a"))).route
    assert off is not None and off.assignee == "default-user"


def test_values_are_one_line_and_cut_to_jiras_limits() -> None:
    rb = rulebook(labels=["{title}"], fields={"customfield_10051": "{title}"})
    long = finding(Title="line one\nline two " + "x" * 400, Resources=tags(owner="w" * 300))
    route = decide(rb, long).route
    assert route is not None
    assert "\n" not in route.summary and len(route.summary) == 255 and route.summary.startswith("[HIGH] line one line")
    (label,) = route.labels
    assert label.startswith("line-one-line-two-x") and len(label) == 255
    assert len(route.fields["customfield_10051"]) == 255 and "\n" not in route.fields["customfield_10051"]
    blank = decide(rulebook(summary="{resource.tags.none}"), finding()).route
    assert blank is not None and blank.summary.startswith("Security Hub finding ")


def test_a_route_with_nothing_from_the_finding_is_resolved_once() -> None:
    rb = Rulebook.model_validate({"defaults": {"project": "SEC", "labels": ["a{{b}}"], "fields": {"cf_1": "x"}}})
    one, two = (decide(rb, finding(Title=t)).route for t in ("one", "two"))
    assert one is two and one is not None and one.labels == ("a{b}",) and one.summary == ""


def test_explain_shows_the_rendered_values_and_why_the_tag_lookup_went_so() -> None:
    text = explain(rulebook(), finding(Resources=tags(env="prod", owner="team-b")))
    assert "assignee_from_tag: tag owner='team-b'" in text
    assert "project_from_tag: tag owner='team-b' is not in the map: fallback" in text
    assert "summary '[HIGH] S3 buckets should block public access'" in text
    assert "project TRIAGE" in text and f"assignee {BOB}" in text and "customfield_10051='team-b'" in text


def test_the_start_up_check_covers_every_project_a_tag_can_pick() -> None:
    projects, _ = rulebook_targets(rulebook())
    assert set(projects) == {"SEC", "OPS", "TEAMA", "TRIAGE"}


# --- the planner ---------------------------------------------------------------------------------------------

def test_a_new_issue_carries_the_rendered_values() -> None:
    (create,) = plan_page([finding(Resources=tags(env="prod", owner="team-a"))], rulebook(), {}, {}).creates
    d = create.draft
    assert d.summary == "[HIGH] S3 buckets should block public access" and d.project == "TEAMA"
    assert d.assignee == ALICE and d.custom_fields["customfield_10051"] == "team-a"
    assert "team-a" in d.labels and "acct-111122223333" in d.labels
    assert create.entry.project == "TEAMA"


def test_summary_and_labels_follow_the_finding_fields_are_set_at_create_and_the_project_never_moves() -> None:
    rb = rulebook()
    old = finding(Resources=tags(env="prod", owner="team-a"))
    entry = tracked(old, rb)
    assert entry.state == OPEN and entry.project == "TEAMA"
    new = finding(Resources=tags(env="prod", owner="team-b"), Title="Renamed")
    (update,) = plan_page([new], rb, {entry.key: entry}, {}).updates
    assert set(update.fields) == {"summary", "description"}  # no custom field, no component, no project
    assert update.fields["summary"] == "[HIGH] Renamed"
    assert update.labels_add == ("team-b",) and update.labels_remove == ("team-a",)
    assert update.entry.project == "TEAMA"
    again = plan_page([new], rb, {entry.key: update.entry}, {})
    assert again.updates == [] and again.unchanged == 1


# --- validation: the key and the line -------------------------------------------------------------------------

def _problems(tmp_path: Path, rulebook_text: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(HEAD + "rulebook:\n" + rulebook_text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [line.split("c.yaml", 1)[1] for line in str(caught.value).splitlines()]


def test_bad_templates_are_refused_with_key_and_line(tmp_path: Path) -> None:
    text = """\
  defaults:
    project: SEC
    summary: "[{severity}] {titel}"
    labels: [ok, "{acount_id}"]
    fields:
      customfield_10060: {value: "{region"}
  rules:
    - name: r
      route:
        components: ["{resource.tag.owner}"]
"""
    problems = _problems(tmp_path, text)
    assert problems[0].startswith(":9: rulebook.defaults.summary: unknown placeholder {titel}; allowed: severity")
    assert problems[1].startswith(":10: rulebook.defaults.labels[1]: unknown placeholder {acount_id}")
    assert problems[2].startswith(":12: rulebook.defaults.fields.customfield_10060.value: '{' at character 1 "
                                  "is not closed")
    assert problems[3].startswith(":16: rulebook.rules[0].route.components[0]: unknown placeholder "
                                  "{resource.tag.owner}")
    assert len(problems) == 4


def test_bad_tag_maps_are_refused_with_key_and_line(tmp_path: Path) -> None:
    text = """\
  defaults:
    project: SEC
    labels: ["two words"]
    assignee_from_tag: {tag: owner, map: {Team-A: x, team-a: y}}
    project_from_tag:
      tag: owner
      map: {team-a: sec}
      fallback: "not a key"
"""
    problems = _problems(tmp_path, text)
    assert problems[0] == ":9: rulebook.defaults.labels[0]: 'two words' is not a valid Jira label (labels cannot " \
                          "contain spaces)"
    assert problems[1].startswith(":10: rulebook.defaults.assignee_from_tag.map.team-a: 'team-a' and 'Team-A' are "
                                  "the same tag value")
    assert problems[2].startswith(":13: rulebook.defaults.project_from_tag.map.team-a: 'sec' is not a Jira project")
    assert problems[3].startswith(":14: rulebook.defaults.project_from_tag.fallback: 'not a key' is not a Jira")


def test_a_summary_must_say_something() -> None:
    with pytest.raises(ValidationError, match="a summary needs some text or a placeholder"):
        rulebook(summary="  ")
    with pytest.raises(ValidationError, match="unknown key|Extra inputs"):
        rulebook(assignee_from_tag={"tag": "owner", "map": {"a": "b"}, "fallbak": "x"})


def test_a_tag_value_never_forges_sh2jira_own_labels() -> None:
    """A label rendered from a tag that reads like sh2jira's own (`sh2jira-<digest>` of another finding) is dropped:
    it would make recovery, rebuild and reconcile take this issue for the other finding's."""
    book = rulebook(labels=["security-hub", "{resource.tags.team}"])
    forged = finding(Resources=tags(team="sh2jira-0123456789abcdef0123"))
    create = plan_page([forged], book, {}, {}).creates[0]
    own = [lb for lb in create.draft.labels if lb.startswith("sh2jira-")]
    assert own == [forged.key.label]
    assert "security-hub" in create.draft.labels
    plain = finding(Resources=tags(team="payments"))
    assert "payments" in plan_page([plain], book, {}, {}).creates[0].draft.labels


@pytest.mark.parametrize("label", ["sh2jira", "sh2jira-0123456789abcdef0123", "SH2JIRA-grp-1"])
def test_a_rule_cannot_set_sh2jira_own_labels(label: str) -> None:
    with pytest.raises(ValidationError, match="sh2jira's own"):
        rulebook(labels=["security-hub", label])
