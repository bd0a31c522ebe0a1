"""The template language: fixed names only, `{{`/`}}` escapes, defaults for missing values, nothing executed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sh2jira.finding import Finding
from sh2jira.templates import (
    NAMES,
    TemplateError,
    compile_template,
    label_value,
    one_line_value,
    render_labels,
)

DOC: dict[str, Any] = {
    "SchemaVersion": "2018-10-08", "Id": "f-1", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/inspector",
    "ProductName": "Inspector", "CompanyName": "Amazon", "AwsAccountId": "111122223333", "Region": "eu-west-1",
    "GeneratorId": "gen", "Types": ["Software and Configuration Checks/Vulnerabilities/CVE", "TTPs/x"],
    "CreatedAt": "2026-11-20T00:00:00.000Z", "UpdatedAt": "2026-11-20T00:00:00.000Z",
    "Severity": {"Label": "CRITICAL"}, "Title": "CVE-2026-1 - openssl", "Description": "d",
    "Resources": [{"Type": "AwsEc2Instance", "Id": "i-0abc", "Region": "eu-west-1",
                   "Tags": {"owner": "team-a", "cost center": "42"}},
                  {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::other", "Tags": {"owner": "team-b"}}],
    "Compliance": {"Status": "FAILED", "SecurityControlId": "EC2.1"}, "RecordState": "ACTIVE",
    "Vulnerabilities": [{"Id": "CVE-2026-1"}, {"Id": "CVE-2026-2"}],
}


def finding(**changes: Any) -> Finding:
    doc = copy.deepcopy(DOC)
    doc.update(changes)
    return Finding.parse(doc)


@pytest.mark.parametrize(("source", "out"), [
    ("[{severity}] {title}", "[CRITICAL] CVE-2026-1 - openssl"),
    ("{account_id}/{region}/{product}/{control_id}", "111122223333/eu-west-1/Inspector/EC2.1"),
    ("{resource.id} {resource.type}", "i-0abc AwsEc2Instance"),
    ("{resource.tags.owner}", "team-a"),  # the first resource's, not the second's
    ("{resource.tags.cost center}", "42"),  # a tag key with a space
    ("{finding_id} {cve}", "f-1 CVE-2026-1"),
    ("{types}", "Software and Configuration Checks/Vulnerabilities/CVE, TTPs/x"),
    ("{{literal}} {{{severity}}}", "{literal} {CRITICAL}"),
    ("no placeholders", "no placeholders"),
    ("{ severity }", "CRITICAL"),
])
def test_placeholders_render_the_named_fact(source: str, out: str) -> None:
    assert compile_template(source).render(finding()) == out


def test_a_missing_value_is_empty_or_the_placeholders_default() -> None:
    bare = finding(Resources=[{"Type": "Other", "Id": "x"}], Vulnerabilities=[], Compliance={"Status": "FAILED"})
    assert compile_template("<{resource.tags.owner}>").render(bare) == "<>"
    assert compile_template("{resource.tags.owner|unowned}").render(bare) == "unowned"
    assert compile_template("{cve|no-cve}/{control_id|-}").render(bare) == "no-cve/-"
    assert compile_template("{resource.tags.owner|unowned}").render(finding()) == "team-a"
    nothing = finding(Resources=[{"Type": "Other", "Id": "x"}])
    nothing = Finding(**{**nothing.__dict__, "resources": ()})
    assert compile_template("{resource.id}{resource.tags.owner|none}").render(nothing) == "none"


@pytest.mark.parametrize(("source", "problem"), [
    ("{nope}", "unknown placeholder {nope}"),
    ("{title.__class__}", "unknown placeholder {title.__class__}"),
    ("{resource.tags.}", "unknown placeholder {resource.tags.}"),
    ("{raw}", "unknown placeholder {raw}"),
    ("{0}", "unknown placeholder {0}"),
    ("{}", "empty placeholder"),
    ("{title", "is not closed"),
    ("{ti{tle}", "is not closed"),
    ("title}", "a lone '}'"),
    ("{title|x{y}", "is not closed"),
])
def test_bad_templates_are_refused_naming_the_problem(source: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=None) as caught:
        compile_template(source)
    assert problem in str(caught.value)
    if "unknown" in problem:
        assert "resource.tags.<TAG>" in str(caught.value)  # the allowed names are listed


def test_values_are_data_never_code() -> None:
    """A value that looks like a template or format string is inserted as it is, never evaluated again."""
    sneaky = finding(Title="{resource.tags.owner} {0.__class__} %s ${x}")
    assert compile_template("{title}").render(sneaky) == "{resource.tags.owner} {0.__class__} %s ${x}"


def test_the_allowed_names_are_the_documented_set() -> None:
    for name in ("severity", "title", "account_id", "region", "product", "control_id", "resource.id",
                 "resource.type", "resource.tags.<TAG>", "finding_id", "types", "cve"):
        assert name in NAMES


def test_one_line_values_and_labels_are_cleaned_and_cut() -> None:
    assert one_line_value("a\nb\r\n  c\u202e") == "a b c"
    long = one_line_value("x" * 300)
    assert len(long) == 255 and long.endswith("\u2026")
    assert label_value(" red  team\nblue ") == "red-team-blue"
    assert label_value("y" * 300) == "y" * 255
    assert label_value("\n \t") == ""


def test_labels_render_drop_empties_and_duplicates() -> None:
    templates = [compile_template(s) for s in ("{account_id}", "{resource.tags.missing}", "{account_id}",
                                               "{resource.tags.cost center}", "{title}")]
    assert render_labels(templates, finding()) == ("111122223333", "42", "CVE-2026-1---openssl")


def test_compiling_is_cached() -> None:
    assert compile_template("[{severity}]") is compile_template("[{severity}]")
