"""Findings for the crash test: small, valid ASFF from several products, accounts and regions, with the answer.

Each generated finding says whether it must get an issue (`ticketable`), decided here by construction and not
by sh2jira's own rules, so the verification is an independent oracle: INFORMATIONAL findings are skipped by the
crash rulebook (crashlib.RULEBOOK) and a control that PASSED gets no issue at all. UpdatedAt values are spread
over the past hours in pairs (equal timestamps across page boundaries), so the read cursor really advances.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

REGIONS = ("us-east-1", "eu-west-1")
ACCOUNTS = ("111122223333", "444455556666", "777788889999")
SEVERITIES = (("CRITICAL", 95), ("HIGH", 75), ("MEDIUM", 50), ("LOW", 20), ("INFORMATIONAL", 0))
SEVERITY_WEIGHTS = (5, 20, 40, 25, 10)
CONTROLS = (("S3.8", "S3 general purpose buckets should block public access", "AwsS3Bucket"),
            ("EC2.8", "EC2 instances should use IMDSv2", "AwsEc2Instance"),
            ("IAM.1", "IAM policies should not allow full administrative privileges", "AwsIamPolicy"),
            ("KMS.4", "AWS KMS key rotation should be enabled", "AwsKmsKey"))


@dataclass(frozen=True)
class Generated:
    doc: dict[str, Any]
    ticketable: bool


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def generate(n: int, *, seed: int, now: datetime) -> list[Generated]:
    """`n` findings, deterministic per seed; UpdatedAt two per 30 s, the newest a minute before `now`."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        updated = now - timedelta(minutes=1) - timedelta(seconds=30 * ((n - 1 - i) // 2))
        region, account = rng.choice(REGIONS), rng.choice(ACCOUNTS)
        label, normalized = rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0]
        kind = rng.choice(("control", "control", "guardduty", "inspector", "custom"))
        doc = _base(kind, i, seed, region, account, label, normalized, _iso(updated))
        passed = kind == "control" and rng.random() < 0.1
        if kind == "control":
            doc["Compliance"]["Status"] = "PASSED" if passed else "FAILED"
        out.append(Generated(doc, ticketable=label != "INFORMATIONAL" and not passed))
    return out


def _base(kind: str, i: int, seed: int, region: str, account: str, label: str, normalized: int,
          updated: str) -> dict[str, Any]:
    uid = f"{seed:04d}-{i:06d}"
    resource = f"arn:aws:s3:::crash-bucket-{uid}"
    doc: dict[str, Any] = {
        "SchemaVersion": "2018-10-08", "AwsAccountId": account, "Region": region, "CompanyName": "AWS",
        "CreatedAt": updated, "UpdatedAt": updated, "FirstObservedAt": updated, "LastObservedAt": updated,
        "Severity": {"Label": label, "Normalized": normalized}, "RecordState": "ACTIVE", "Workflow": {"Status": "NEW"},
        "Resources": [{"Type": "AwsS3Bucket", "Id": resource, "Partition": "aws", "Region": region}],
    }
    if kind == "control":
        control, title, rtype = CONTROLS[i % len(CONTROLS)]
        doc["Resources"][0]["Type"] = rtype
        doc.update(Id=f"arn:aws:securityhub:{region}:{account}:security-control/{control}/finding/{uid}",
                   ProductArn=f"arn:aws:securityhub:{region}::product/aws/securityhub", ProductName="Security Hub",
                   GeneratorId=f"security-control/{control}", Title=title,
                   Types=["Software and Configuration Checks/Industry and Regulatory Standards"],
                   Description=f"{title} ({uid}).", Compliance={"Status": "FAILED", "SecurityControlId": control},
                   Remediation={"Recommendation": {"Text": "See the control's documentation.",
                                                   "Url": "https://docs.aws.amazon.com/securityhub/"}})
    elif kind == "guardduty":
        doc.update(Id=f"arn:aws:guardduty:{region}:{account}:detector/d0/finding/{uid}",
                   ProductArn=f"arn:aws:securityhub:{region}::product/aws/guardduty", ProductName="GuardDuty",
                   GeneratorId="arn:aws:guardduty:detector", Title=f"Port probe on unprotected port ({uid})",
                   Types=["TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort"],
                   Description="An EC2 instance has an unprotected port that a known scanner is probing.")
    elif kind == "inspector":
        doc.update(Id=f"arn:aws:inspector2:{region}:{account}:finding/{uid}",
                   ProductArn=f"arn:aws:securityhub:{region}::product/aws/inspector", ProductName="Inspector",
                   GeneratorId="AWSInspector", Title=f"CVE-2024-{i % 9000 + 1000} - openssl",
                   Types=["Software and Configuration Checks/Vulnerabilities/CVE"],
                   Description="A vulnerable openssl package is installed.")
    else:
        doc.update(Id=f"crash-custom-{uid}", ProductName="Default",
                   ProductArn=f"arn:aws:securityhub:{region}:{account}:product/{account}/default",
                   CompanyName="Example Corp", GeneratorId="crash-scanner",
                   Title=f"Custom check failed ({uid})", Types=["Software and Configuration Checks"],
                   Description="A check of the in-house scanner failed.")
    return doc
