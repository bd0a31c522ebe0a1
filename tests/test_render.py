"""sh2jira.render: summaries, descriptions, console links, comments and fingerprints from findings."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from sh2jira import render, wiki
from sh2jira.finding import Finding, unwrap_documents
from tests.paths import ASFF_DIR
from tests.test_wiki import PAYLOADS, active_markup, visible

BASE: dict[str, Any] = {
    "SchemaVersion": "2018-10-08",
    "Id": "arn:aws:securityhub:us-east-1:111122223333:security-control/S3.1/finding/0e7f5c3a",
    "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
    "ProductName": "Security Hub", "CompanyName": "AWS",
    "GeneratorId": "security-control/S3.1", "AwsAccountId": "111122223333", "AwsAccountName": "prod",
    "Region": "us-east-1", "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
    "FirstObservedAt": "2025-01-02T03:04:05.000Z", "LastObservedAt": "2025-02-02T03:04:05.000Z",
    "CreatedAt": "2025-01-02T03:04:05.000Z", "UpdatedAt": "2025-02-02T03:04:05.000Z",
    "Severity": {"Label": "MEDIUM", "Normalized": 40},
    "Title": "S3 general purpose buckets should have block public access settings enabled",
    "Description": "This control checks whether the preceding S3 block public access settings are set.",
    "Remediation": {"Recommendation": {
        "Text": "For information on how to correct this issue, consult the Security Hub documentation.",
        "Url": "https://docs.aws.amazon.com/console/securityhub/S3.1/remediation"}},
    "Resources": [{"Type": "AwsAccount", "Id": "AWS::::Account:111122223333", "Partition": "aws",
                   "Region": "us-east-1", "Tags": {"team": "platform"}}],
    "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.1"},
    "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE",
}


def finding(**changes: Any) -> Finding:
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return Finding.parse(raw)


def _set(path: tuple[Any, ...]) -> Callable[[str], Finding]:
    def build(text: str) -> Finding:
        raw = copy.deepcopy(BASE)
        node: Any = raw
        for part in path[:-1]:
            node = node[part]
        if path[-1] == "<tag key>":
            node["Tags"] = {text: "v"}
        else:
            node[path[-1]] = text
        return Finding.parse(raw)
    return build


SLOTS: dict[str, Callable[[str], Finding]] = {
    "title": _set(("Title",)),
    "description": _set(("Description",)),
    "remediation text": _set(("Remediation", "Recommendation", "Text")),
    "resource id": _set(("Resources", 0, "Id")),
    "resource type": _set(("Resources", 0, "Type")),
    "tag key": _set(("Resources", 0, "<tag key>")),
    "tag value": _set(("Resources", 0, "Tags", "team")),
    "account name": _set(("AwsAccountName",)),
    "product name": _set(("ProductName",)),
}

HEADINGS = {"h3. Remediation", "h3. Details", "h3. Resources"}
RESOURCE_HEADER = "||Type||Id||Region||Partition||Tags||"
_PIPE = re.compile(r"(?<!\\)\|")
_LINK = re.compile(r"(?<!\\)\[([^\]]*)\]")


def structure_problems(desc: str, allowed_urls: set[str]) -> list[str]:
    """Check a description line by line: only our headings, rule, table rows and links may be markup; every
    cell, link label and other text must be inert (per the test_wiki detector)."""
    problems: list[str] = []
    lines = desc.split("\n")
    if lines.count("----") != 1:
        problems.append(f"expected one ---- rule, got {lines.count('----')}")
    for line in lines:
        if line in HEADINGS or line in ("----", RESOURCE_HEADER, ""):
            continue
        cells = _PIPE.split(line)
        if line.startswith("||"):
            if len(cells) != 5 or cells[:2] != ["", ""] or cells[4] != "":
                problems.append(f"broken details row: {line[:80]!r}")
            pieces = cells[2:4]
        elif line.startswith("|"):
            if len(cells) != 7 or cells[0] != "" or cells[6] != "":
                problems.append(f"broken resource row: {line[:80]!r}")
            pieces = cells[1:6]
        else:
            pieces = [_LINK.sub("", line)]
            for m in _LINK.finditer(line):
                label, _, url = m.group(1).partition("|")
                if url not in allowed_urls:
                    problems.append(f"link to {url!r}")
                pieces.append(label)
        for piece in pieces:
            problems.extend(active_markup(piece))
    return problems


def _allowed(f: Finding) -> set[str]:
    return {render.console_url(f), wiki.safe_url(f.remediation_url) or "<none>"}


@pytest.mark.parametrize(("name", "text"), PAYLOADS, ids=[name for name, _ in PAYLOADS])
def test_hostile_text_in_every_slot_stays_inert(name: str, text: str) -> None:
    for slot, build in SLOTS.items():
        f = build(text)
        desc = render.description(f, console_url=render.console_url(f))
        assert structure_problems(desc, _allowed(f)) == [], f"{name} in {slot}"
        assert wiki.jira_len(desc) <= render.DESCRIPTION_LIMIT
        shown = " ".join(visible(desc).split())
        assert wiki.one_line(text)[:20] in shown, f"{name} in {slot} is not shown"
        assert f.key.label.replace("-", "\\-") in desc


@pytest.mark.parametrize(("name", "text"), PAYLOADS, ids=[name for name, _ in PAYLOADS])
def test_hostile_title_makes_a_clean_one_line_summary(name: str, text: str) -> None:
    out = render.summary(finding(Title=text))
    assert wiki.jira_len(out) <= render.SUMMARY_LIMIT
    assert out == out.strip() and "\n" not in out and out
    assert not re.search("[\x00-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
                         "\ud800-\udfff]", out)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://evil.example@x/", "[x|https://evil.example]",
                                 "https://ok.example/a]b|c", "http://10.0.0.1/admin"])
def test_hostile_remediation_url_is_never_a_foreign_link(url: str) -> None:
    f = finding(Remediation={"Recommendation": {"Text": "fix", "Url": url}})
    desc = render.description(f, console_url=render.console_url(f))
    assert structure_problems(desc, _allowed(f)) == []


def _asff_findings() -> list[tuple[str, Finding]]:
    out = []
    for path in sorted(ASFF_DIR.glob("*.json")):
        for i, raw in enumerate(unwrap_documents(json.loads(path.read_text(encoding="utf-8")))):
            out.append((f"{path.stem}#{i}", Finding.parse(raw)))
    return out


ASFF = _asff_findings()


def test_all_shared_samples_parse() -> None:
    assert len(ASFF) == 45


@pytest.mark.parametrize(("name", "f"), ASFF, ids=[name for name, _ in ASFF])
def test_real_finding_renders(name: str, f: Finding) -> None:
    s = render.summary(f)
    assert s and wiki.jira_len(s) <= render.SUMMARY_LIMIT
    url = render.console_url(f)
    desc = render.description(f, console_url=url)
    assert wiki.jira_len(desc) <= render.DESCRIPTION_LIMIT
    assert structure_problems(desc, _allowed(f)) == []
    assert f"[View in Security Hub|{url}]" in desc
    if f.remediation_text.strip():
        assert wiki.escape(f.remediation_text.strip()) in desc
    if f.remediation_url:
        assert f"[Remediation guidance|{wiki.safe_url(f.remediation_url)}]" in desc
    if not (f.remediation_text.strip() or f.remediation_url):
        assert "No remediation provided by" in desc
    for resource in f.resources:
        assert wiki.escape_cell(resource.id) in desc


def test_summary_collapses_whitespace_and_strips_controls() -> None:
    f = finding(Title="  S3.1\r\n\tbucket\u2028is\u00a0 public\x07 ")
    assert render.summary(f) == "S3.1 bucket is public"


def test_summary_of_256_char_title_is_cut_to_255_with_ellipsis() -> None:
    title = ("word " * 60)[:255] + "X"
    out = render.summary(finding(Title=title))
    assert len(out) <= 255 and out.endswith("\u2026")
    assert title.startswith(out[:-1])
    assert render.summary(finding(Title="a" * 255)) == "a" * 255


def test_summary_with_emoji_counts_utf16_and_keeps_pairs() -> None:
    title = "\U0001f525" * 200
    out = render.summary(finding(Title=title))
    assert wiki.jira_len(out) <= 255
    out.encode("utf-16")
    assert out == "\U0001f525" * 127 + "\u2026"


def test_summary_template_fields_and_validation() -> None:
    f = finding()
    assert render.summary(f, "[{severity}] {control_id}: {resource_id}") == \
        "[MEDIUM] S3.1: AWS::::Account:111122223333"
    for bad in ("{nope}", "{title.__class__}", "{title[0]}", "{title!r}", "{title:{severity}}"):
        with pytest.raises(ValueError):
            render.summary(f, bad)


def test_summary_falls_back_when_title_is_only_invisible() -> None:
    f = finding(Title="\u200b\x00\u202e")
    assert render.summary(f) == f"Security Hub finding {f.key.digest}"


def _huge_raw() -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw["Title"] = "T" * 10_000
    raw["Description"] = "[~x] *d* " * 20_000
    raw["Remediation"] = {"Recommendation": {"Text": "{code}r{code} " * 5_000,
                                             "Url": "https://docs.aws.amazon.com/" + "p/" * 900}}
    raw["Types"] = ["Type|" + "t" * 300] * 30
    raw["Resources"] = [
        {"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:us-east-1:111122223333:instance/{i:04d}" + "i" * 2_000,
         "Region": "us-east-1", "Partition": "aws",
         "Tags": {f"key-{j}-" + "k" * 120: "v|" * 128 for j in range(50)}}
        for i in range(100)]
    return raw


@pytest.mark.parametrize("limit", [render.DESCRIPTION_LIMIT, 10_000, 2_500, render.MIN_DESCRIPTION_LIMIT])
def test_description_of_huge_finding_stays_within_limit(limit: int) -> None:
    f = Finding.parse(_huge_raw())
    desc = render.description(f, console_url=render.console_url(f), limit=limit)
    assert wiki.jira_len(desc) <= limit
    assert structure_problems(desc, _allowed(f)) == []
    assert f.key.label.replace("-", "\\-") in desc
    if limit == render.DESCRIPTION_LIMIT:
        rows = [line for line in desc.split("\n") if line.startswith("|") and not line.startswith("||")]
        assert 0 < len(rows) < 100
        assert "more resources not listed \\(100 in total\\)" in desc
        assert "[View in Security Hub|" in desc and "h3. Details" in desc and "h3. Remediation" in desc


def test_description_with_huge_id_drops_the_console_link_but_keeps_the_footer() -> None:
    f = finding(Id="x/" * 20_000)
    desc = render.description(f, console_url=render.console_url(f))
    assert wiki.jira_len(desc) <= render.DESCRIPTION_LIMIT
    assert "View in Security Hub" not in desc and f.key.label.replace("-", "\\-") in desc


def test_description_limit_below_minimum_is_refused() -> None:
    with pytest.raises(ValueError):
        render.description(finding(), console_url="https://console.aws.amazon.com/", limit=999)


def test_description_sections_and_missing_remediation() -> None:
    f = finding(Remediation=None, ProductName="Inspector", AwsAccountName="")
    desc = render.description(f, console_url=render.console_url(f))
    assert "h3. Remediation\nNo remediation provided by Inspector." in desc
    assert "||Severity|MEDIUM \\(normalized 40\\)|" in desc
    assert "||Account|111122223333|" in desc
    assert "||Compliance|FAILED \\(control S3.1\\)|" in desc
    assert desc.index("h3. Remediation") < desc.index("h3. Details") < desc.index("h3. Resources") \
        < desc.index("----")


@pytest.mark.parametrize(("arn", "region", "host", "region_param"), [
    ("arn:aws:securityhub:eu-west-1::product/aws/securityhub", "eu-west-1", "console.aws.amazon.com",
     "eu-west-1"),
    ("arn:aws-us-gov:securityhub:us-gov-west-1::product/aws/securityhub", "us-gov-west-1",
     "console.amazonaws-us-gov.com", "us-gov-west-1"),
    ("arn:aws-cn:securityhub:cn-north-1::product/aws/securityhub", "cn-north-1", "console.amazonaws.cn",
     "cn-north-1"),
    ("arn:aws:securityhub:test-region::product/aquasecurity/aquasecurity", "test-region",
     "console.aws.amazon.com", None),
    ("arn:aws::securityhub:us-east-1::product/aws/guardduty", "securityhub", "console.aws.amazon.com",
     "us-east-1"),
    ("arn:aws-iso:securityhub:cn-northwest-1::product/x/y", "cn-northwest-1", "console.amazonaws.cn",
     "cn-northwest-1"),
])
def test_console_url_per_partition_and_region(arn: str, region: str, host: str,
                                              region_param: str | None) -> None:
    finding_id = "arn:aws:securityhub:x:1:subscription/a b/c:d/finding/e%f"
    url = render.console_url(finding(ProductArn=arn, Region=region, Id=finding_id))
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == host and parts.path == "/securityhub/home"
    assert parts.query == (f"region={region_param}" if region_param else "")
    prefix = "/findings?search=Id%3D%255Coperator%255C%253AEQUALS%255C%253A"
    assert parts.fragment.startswith(prefix)
    encoded = parts.fragment[len(prefix):]
    assert re.fullmatch(r"[A-Za-z0-9%._~-]+", encoded)
    assert unquote(unquote(encoded)) == finding_id
    assert wiki.safe_url(url) == url


def test_severity_comment_escapes_values() -> None:
    out = render.severity_comment("HIGH", "CRITICAL", "High", "[~admin]")
    assert "HIGH" in out and "CRITICAL" in out and "High" in out
    assert active_markup(out) == []
    assert "\\[\\~admin\\]" in out
    same = render.severity_comment("HIGH", "HIGH", "High", "Highest")
    assert "severity is HIGH" in same and "from High to Highest" in same


def test_fingerprint_is_stable_and_order_independent() -> None:
    a = {"summary": "s", "description": "d", "labels": ["b", "a"], "priority": {"name": "High", "id": 2}}
    b = {"priority": {"id": 2, "name": "High"}, "labels": ["b", "a"], "description": "d", "summary": "s"}
    assert render.fingerprint(a) == render.fingerprint(b)
    assert re.fullmatch(r"[0-9a-f]{64}", render.fingerprint(a))
    assert render.fingerprint(a) != render.fingerprint({**a, "labels": ["a", "b"]})
    assert render.fingerprint(a) != render.fingerprint({**a, "summary": "t"})
    assert render.fingerprint({"x": {"b", "a"}}) == render.fingerprint({"x": frozenset(["a", "b"])})
    assert render.fingerprint({"x": ("a", 1)}) == render.fingerprint({"x": ["a", 1]})
    assert render.fingerprint({}) == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


@pytest.mark.parametrize("bad", [{"x": object()}, {"x": float("nan")}, {"x": {1: "a"}}])
def test_fingerprint_refuses_unstable_values(bad: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        render.fingerprint(bad)
