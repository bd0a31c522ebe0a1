"""OCSF findings (the new Security Hub) → Finding: every real sample, the mapping rules, the identity shared
with ASFF, and malformed input refused with the field named."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from sh2jira.finding import Finding, FindingError, FindingKey
from sh2jira.ocsf import (
    asff_product_arn,
    asff_resource_type,
    is_ocsf,
    link_status_v2,
    linked_issue_v2,
    parse_any,
    parse_ocsf,
    raw_key,
    tombstone,
    unwrap,
    v2_product_uid,
)
from sh2jira.rulebook import Rulebook, decide
from tests.paths import OCSF_DIR


def sample(name: str) -> dict[str, Any]:
    docs = unwrap(json.loads((OCSF_DIR / name).read_text(encoding="utf-8")))
    assert len(docs) == 1
    return copy.deepcopy(docs[0])


SAMPLES = sorted(p.name for p in OCSF_DIR.glob("*.json"))


def test_there_are_real_samples() -> None:
    assert len(SAMPLES) >= 5


@pytest.mark.parametrize("name", SAMPLES)
def test_every_real_sample_parses(name: str) -> None:
    raw = sample(name)
    assert is_ocsf(raw)
    f = parse_any(raw)
    assert f.key.product_arn.startswith("arn:aws:securityhub:") and ":product/" in f.key.product_arn
    assert f.id == raw["finding_info"]["uid"]
    assert f.title == raw["finding_info"]["title"]
    assert f.account_id == raw["cloud"]["account"]["uid"]
    assert f.severity_label in ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
    assert f.updated_at.endswith("Z") and len(f.updated_at) == 24
    assert f.resources and all(r.type and r.id for r in f.resources)


def test_cspm_control_sample() -> None:
    f = parse_ocsf(sample("cruxstack-cspm-cis-config1-fail-critical.json"))
    assert f.severity_label == "CRITICAL"
    assert f.compliance_status == "FAILED"
    assert f.control_id == "Config.1"
    assert f.generator_id == "security-control/Config.1"
    assert f.is_active and f.workflow_status == "NEW"
    assert f.remediation_url == "https://docs.aws.amazon.com/console/securityhub/Config.1/remediation"
    assert f.remediation_text.startswith("For information on how to correct this issue")
    assert f.resources[0].type == "AwsAccount" and f.resources[0].id == "123456789012"
    assert f.product_name == "Security Hub" and f.company_name == "AWS"
    assert f.updated_at == "2025-11-03T07:31:57.235Z"


def test_activity_close_is_not_active_even_with_status_new() -> None:
    f = parse_ocsf(sample("cruxstack-guardduty-runtime-activity-close.json"))
    assert not f.is_active and f.record_state == "ARCHIVED"
    assert f.workflow_status == "NEW"
    assert [r.type for r in f.resources] == ["AwsContainerContainer", "AwsEc2Instance"]
    assert f.resources[1].tags["environment"] == "production"


def test_v2_event_envelope_is_unwrapped() -> None:
    doc = json.loads((OCSF_DIR / "sumologic-guardduty-eventbridge-v2.json").read_text(encoding="utf-8"))
    assert doc["detail-type"] == "Findings Imported V2"
    (raw,) = unwrap(doc)
    f = parse_any(raw)
    assert f.workflow_status == "SUPPRESSED"
    assert f.product_name == "GuardDuty"
    assert f.resources[0].type == "AwsIamAccessKey"


def test_coverage_finding_with_hex_uid_and_arn_in_uid_alt() -> None:
    f = parse_ocsf(sample("asr-coverage-guardduty-pass.json"))
    assert f.id == "8c4b7f689d35377f5ac8d5f317c620058b54029ee4a56a644e6e88c87ac19a60"
    assert f.key.product_arn == "arn:aws:securityhub:us-east-1::product/aws/securityhub-coverage"
    assert f.compliance_status == "PASSED" and f.control_id == ""
    assert f.resources[0].id.startswith("arn:aws:guardduty:")  # the ARN (uid_alt) is the resource id
    assert f.resources[0].tags == {"SO0111-ASR-GuardDutyFilter": ""}


def test_identity_is_the_asff_identity_for_a_cspm_control() -> None:
    """A control finding read through GetFindings and through GetFindingsV2 has one key, one label."""
    raw = sample("cruxstack-cspm-cis-config1-fail-critical.json")
    v2 = parse_ocsf(raw)
    asff = Finding.parse({"Id": raw["finding_info"]["uid"], "ProductArn":
                          "arn:aws:securityhub:us-east-1::product/aws/securityhub", "AwsAccountId": "123456789012",
                          "Title": "t", "Severity": {"Label": "HIGH"}})
    assert v2.key == asff.key and v2.key.label == asff.key.label
    assert v2_product_uid(v2.key.product_arn) == raw["metadata"]["product"]["uid"]
    assert asff_product_arn(raw["metadata"]["product"]["uid"]) == v2.key.product_arn


@pytest.mark.parametrize(("sid", "label"), [(1, "INFORMATIONAL"), (2, "LOW"), (3, "MEDIUM"), (4, "HIGH"),
                                            (5, "CRITICAL"), (6, "CRITICAL")])
def test_severity_ids(sid: int, label: str) -> None:
    raw = sample("cruxstack-guardduty-runtime-newbinary.json")
    raw["severity_id"] = sid
    assert parse_ocsf(raw).severity_label == label


def test_unknown_severity_falls_back_to_the_text_or_is_refused() -> None:
    raw = sample("cruxstack-guardduty-runtime-newbinary.json")
    raw.update(severity_id=99, severity="High")
    assert parse_ocsf(raw).severity_label == "HIGH"
    raw.update(severity_id=0, severity="Unknown")
    with pytest.raises(FindingError, match=r"severity_id 0 \(Unknown\)"):
        parse_ocsf(raw)


@pytest.mark.parametrize(("sid", "workflow"), [(1, "NEW"), (2, "NOTIFIED"), (3, "SUPPRESSED"), (4, "RESOLVED"),
                                               (99, "NOTIFIED"), (0, "NEW")])
def test_status_ids(sid: int, workflow: str) -> None:
    raw = sample("cruxstack-guardduty-runtime-newbinary.json")
    raw["status_id"] = sid
    f = parse_ocsf(raw)
    assert f.workflow_status == workflow and f.is_active


def test_status_archived_is_not_active() -> None:
    raw = sample("cruxstack-guardduty-runtime-newbinary.json")
    raw["status_id"] = 5
    assert not parse_ocsf(raw).is_active


def test_passed_control_arriving_as_create_with_resolved() -> None:
    raw = sample("cruxstack-cspm-cis-config1-fail-critical.json")
    raw.update(activity_name="Create", activity_id=1, status="Resolved", status_id=4)
    raw["compliance"].update(status="Pass", status_id=1)
    f = parse_ocsf(raw)
    assert f.is_active and f.compliance_status == "PASSED" and f.workflow_status == "RESOLVED"


def test_epoch_milliseconds_and_nine_fraction_digits() -> None:
    raw = sample("cruxstack-guardduty-runtime-newbinary.json")
    del raw["finding_info"]["modified_time_dt"]
    raw["finding_info"]["modified_time"] = 1762155117235
    assert parse_ocsf(raw).updated_at == "2025-11-03T07:31:57.235Z"
    raw["finding_info"]["modified_time_dt"] = "2025-11-03T07:31:57.337224100Z"
    assert parse_ocsf(raw).updated_at == "2025-11-03T07:31:57.337Z"


def test_vulnerabilities_and_package_remediation() -> None:
    raw = sample("cruxstack-guardduty-runtime-newbinary.json")
    raw.pop("remediation", None)
    raw["vulnerabilities"] = [{
        "cve": {"uid": "CVE-2025-8194", "epss": {"score": "0.00198"},
                "cvss": [{"base_score": 7.5, "severity": "HIGH"}, {"base_score": 5.9}]},
        "is_fix_available": True, "severity": "Important",
        "affected_packages": [{"name": "python3", "version": "3.9.16", "fixed_in_version": "3.9.23",
                               "remediation": {"desc": "yum update python"}}]}]
    f = parse_ocsf(raw)
    assert f.remediation_text == "yum update python" and f.remediation_url == ""
    assert "- CVE-2025-8194; CVSS 7.5; EPSS 0.0020; fix available; packages: python3 3.9.16 (fixed in 3.9.23)" \
        in f.description


def test_further_references_follow_the_text() -> None:
    raw = sample("cruxstack-cspm-cis-config1-fail-critical.json")
    raw["remediation"]["references"] = ["https://a.example/1", "https://a.example/2"]
    f = parse_ocsf(raw)
    assert f.remediation_url == "https://a.example/1"
    assert f.remediation_text.endswith("See also: https://a.example/2")


@pytest.mark.parametrize(("ocsf", "asff"), [
    ("AWS::S3::Bucket", "AwsS3Bucket"), ("AWS::EC2::Instance", "AwsEc2Instance"),
    ("AWS::IAM::AccessKey", "AwsIamAccessKey"), ("AWS::::Account", "AwsAccount"),
    ("AWS::Lambda::Function", "AwsLambdaFunction"), ("AwsLambdaFunction", "AwsLambdaFunction")])
def test_resource_types_read_the_asff_way(ocsf: str, asff: str) -> None:
    assert asff_resource_type(ocsf) == asff


MALFORMED = [
    ("no finding_info.uid", lambda r: r["finding_info"].pop("uid"), "finding_info.uid is missing"),
    ("no product uid", lambda r: r["metadata"]["product"].pop("uid"), "metadata.product.uid is missing"),
    ("no title", lambda r: r["finding_info"].pop("title"), "finding_info.title is missing"),
    ("no account", lambda r: r["cloud"].pop("account"), "cloud.account.uid is missing"),
    ("severity_id text", lambda r: r.update(severity_id="4"), "severity_id must be an integer"),
    ("severity_id 7", lambda r: r.update(severity_id=7), "severity_id 7 is not one of"),
    ("no severity", lambda r: (r.pop("severity_id"), r.pop("severity")), "severity_id is missing"),
    ("status_id 9", lambda r: r.update(status_id=9), "status_id 9 is not one of"),
    ("resources object", lambda r: r.update(resources={"a": 1}), "resources must be a list"),
    ("resource without uid", lambda r: r.update(resources=[{"type": "AWS::S3::Bucket"}]),
     "resources[0] needs a uid or uid_alt"),
    ("bad tags", lambda r: r["resources"][0].update(tags="x"), "resources[0].tags"),
    ("bad time", lambda r: r["finding_info"].update(modified_time_dt="yesterday"),
     "finding_info.modified_time_dt is not an ISO-8601 timestamp"),
    ("metadata not an object", lambda r: r.update(metadata="m"), "metadata must be an object"),
    ("bad epss", lambda r: r.update(vulnerabilities=[{"cve": {"uid": "CVE-1", "epss": {"score": "high"}}}]),
     "vulnerabilities[0].cve.epss.score"),
]


@pytest.mark.parametrize(("name", "change", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_ocsf_names_the_field(name: str, change: Any, reason: str) -> None:
    raw = sample("cruxstack-guardduty-runtime-newbinary.json")
    change(raw)
    with pytest.raises(FindingError) as err:
        parse_ocsf(raw)
    assert reason in str(err.value)
    if "uid is missing" not in reason or "finding_info" not in reason:
        assert raw["finding_info"].get("uid", "") in str(err.value)


def test_not_an_object() -> None:
    with pytest.raises(FindingError, match="expected a JSON object"):
        parse_ocsf(["x"])


def test_rules_match_v2_findings_like_asff() -> None:
    rb = Rulebook.model_validate({
        "defaults": {"project": "SEC", "issue_type": "Task"},
        "rules": [{"name": "gd", "match": {"product": ["GuardDuty"], "resource_type": ["AwsEc2Instance"],
                                            "resource_tags": {"environment": "production"}},
                   "route": {"labels": ["threat"]}},
                  {"name": "cfg", "match": {"control_id": ["Config.*"], "compliance_status": ["FAILED"]},
                   "route": {"project": "OPS"}}]})
    gd = decide(rb, parse_ocsf(sample("cruxstack-guardduty-runtime-newbinary.json")))
    assert gd.rule == "gd"
    cfg = decide(rb, parse_ocsf(sample("cruxstack-cspm-cis-config1-fail-critical.json")))
    assert cfg.rule == "cfg" and cfg.route is not None and cfg.route.project == "OPS"


def test_sh2jira_comments_name_the_issue_and_its_state() -> None:
    raw = sample("cruxstack-guardduty-runtime-newbinary.json")
    assert (linked_issue_v2(raw), link_status_v2(raw)) == ("", "")
    raw["comment"] = "Tracked in Jira as SEC-12: https://jira.example/browse/SEC-12"
    assert (linked_issue_v2(raw), link_status_v2(raw)) == ("SEC-12", "open")
    raw["comment"] = "Jira issue SEC-12 was resolved (Won't Fix) by Ann."
    assert (linked_issue_v2(raw), link_status_v2(raw)) == ("SEC-12", "closed")
    raw["comment"] = "Looked at it, see SEC-12"  # a person's comment names nothing
    assert (linked_issue_v2(raw), link_status_v2(raw)) == ("", "")


def test_raw_key_of_both_formats() -> None:
    raw = sample("cruxstack-cspm-cis-config1-fail-critical.json")
    assert raw_key(raw) == parse_ocsf(raw).key
    assert raw_key({"Id": "i", "ProductArn": "p"}) == FindingKey("p", "i")
    assert raw_key({"finding_info": {}}) is None and raw_key("x") is None


def test_tombstone_is_gone() -> None:
    f = tombstone("arn:aws:guardduty:us-east-1:1:detector/d/finding/x",
                  "arn:aws:securityhub:us-east-1::product/aws/guardduty", "111122223333", "us-east-1")
    assert f.record_state == "DELETED" and not f.is_active
    assert f.key == FindingKey("arn:aws:securityhub:us-east-1::product/aws/guardduty",
                               "arn:aws:guardduty:us-east-1:1:detector/d/finding/x")
