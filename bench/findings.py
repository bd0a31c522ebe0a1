"""Generated ASFF findings that look like a real organisation's Security Hub: several products, accounts, regions.

The shapes follow the real findings in tests/data/asff (Security Hub controls, Inspector, GuardDuty, Config,
IAM Access Analyzer, Macie, a third-party scanner): each carries the fields a provider sends — ProductFields,
Resources with tags, Compliance for control checks, Remediation where the product gives one — and is about the
size of a real one (1.5–4 KB). The output is deterministic per seed, so two runs load the same data set.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
ACCOUNTS = ("111122223333", "210987654321", "301234567890", "444455556666", "512345678901", "601987654321",
            "777788889999", "888811112222")
# (label, Normalized, share): most findings are MEDIUM/LOW, as in a real estate; INFORMATIONAL gets skipped.
SEVERITIES = (("CRITICAL", 90, 0.04), ("HIGH", 70, 0.18), ("MEDIUM", 40, 0.42), ("LOW", 1, 0.31),
              ("INFORMATIONAL", 0, 0.05))
# product → share of the findings
PRODUCTS = (("control", 0.46), ("inspector", 0.24), ("guardduty", 0.10), ("config", 0.08),
            ("access-analyzer", 0.05), ("macie", 0.04), ("prowler", 0.03))

CONTROLS = (
    ("S3.8", "S3 general purpose buckets should block public access", "AwsS3Bucket"),
    ("EC2.2", "VPC default security groups should not allow inbound or outbound traffic", "AwsEc2SecurityGroup"),
    ("EC2.8", "EC2 instances should use Instance Metadata Service Version 2 (IMDSv2)", "AwsEc2Instance"),
    ("IAM.1", "IAM policies should not allow full \"*\" administrative privileges", "AwsIamPolicy"),
    ("CloudTrail.2", "CloudTrail should have encryption at-rest enabled", "AwsCloudTrailTrail"),
    ("RDS.3", "RDS DB instances should have encryption at-rest enabled", "AwsRdsDbInstance"),
    ("Lambda.2", "Lambda functions should use supported runtimes", "AwsLambdaFunction"),
    ("KMS.4", "AWS KMS key rotation should be enabled", "AwsKmsKey"),
    ("ECR.1", "ECR private repositories should have image scanning configured", "AwsEcrRepository"),
    ("EKS.2", "EKS clusters should run on a supported Kubernetes version", "AwsEksCluster"),
)
PACKAGES = ("openssl", "kernel", "glibc", "curl", "log4j-core", "libxml2", "python3", "openssh", "zlib", "sudo")
THREATS = (
    ("TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce", "is performing SSH brute force attacks against"),
    ("TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort", "is probing unprotected ports on"),
    ("Effects/Resource Consumption/CryptoCurrency:EC2-BitcoinTool.B!DNS", "is querying a Bitcoin-related domain"),
    ("TTPs/Command and Control/Backdoor:EC2-C&CActivity.B", "is communicating with a known command and control"),
)
LOREM = ("An attacker who can reach the resource may read or change data that should be private. The check "
         "evaluates the current configuration of the resource against the recommended baseline and reports a "
         "failure when the setting is missing or weaker than required. Review the resource's owner, its exposure "
         "and the data it holds, then apply the remediation below or record a documented exception. ")


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _pick(rng: random.Random, table: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    roll, total = rng.random(), 0.0
    for row in table:
        total += row[-1]
        if roll < total:
            return row
    return table[-1]


def _hex(seed: str, n: int = 32) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def generate(n: int, *, seed: int = 7, now: datetime | None = None, spread: timedelta = timedelta(days=20),
             regions: tuple[str, ...] = REGIONS, accounts: tuple[str, ...] = ACCOUNTS) -> Iterator[dict[str, Any]]:
    """`n` findings with UpdatedAt spread over `spread` ending an hour before `now` (inside a 30-day look-back)."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    newest = now - timedelta(hours=1)
    for i in range(n):
        region = regions[i % len(regions)]
        account = accounts[rng.randrange(len(accounts))]
        updated = newest - timedelta(seconds=rng.random() * spread.total_seconds())
        first = updated - timedelta(days=rng.randrange(0, 60), seconds=rng.randrange(86400))
        label, normalized, _ = _pick(rng, SEVERITIES)
        product = str(_pick(rng, PRODUCTS)[0])
        uid = _hex(f"{seed}:{i}")
        doc = _BUILDERS[product](rng, uid, account, region)
        doc.update({
            "SchemaVersion": "2018-10-08", "AwsAccountId": account, "Region": region,
            "FirstObservedAt": _iso(first), "LastObservedAt": _iso(updated), "CreatedAt": _iso(first),
            "UpdatedAt": _iso(updated), "RecordState": "ACTIVE", "Workflow": {"Status": "NEW"},
            "Severity": {"Label": label, "Normalized": normalized, "Original": label},
        })
        doc.setdefault("FindingProviderFields", {})["Severity"] = {"Label": label, "Original": label}
        yield doc


def _tags(rng: random.Random) -> dict[str, str]:
    env = ("prod", "staging", "dev")[rng.randrange(3)]
    return {"env": env, "team": ("payments", "platform", "data", "web")[rng.randrange(4)],
            "cost-center": f"cc-{rng.randrange(100, 999)}"}


def _control(rng: random.Random, uid: str, account: str, region: str) -> dict[str, Any]:
    control_id, title, rtype = CONTROLS[rng.randrange(len(CONTROLS))]
    service = control_id.split(".")[0].lower()
    resource = f"arn:aws:{service}:{region}:{account}:{rtype[3:].lower()}/{uid[:17]}"
    standards = "aws-foundational-security-best-practices/v/1.0.0"
    return {
        "Id": f"arn:aws:securityhub:{region}:{account}:security-control/{control_id}/finding/{uid[:8]}-{uid[8:12]}-"
              f"{uid[12:16]}-{uid[16:20]}-{uid[20:32]}",
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/securityhub",
        "ProductName": "Security Hub", "CompanyName": "AWS", "GeneratorId": f"security-control/{control_id}",
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "Title": title,
        "Description": f"This control checks whether {title[0].lower()}{title[1:]}. " + LOREM[: rng.randrange(80, 400)],
        "Remediation": {"Recommendation": {
            "Text": "For information on how to correct this issue, consult the AWS Security Hub controls "
                    "documentation.",
            "Url": f"https://docs.aws.amazon.com/console/securityhub/{control_id}/remediation"}},
        "ProductFields": {
            "RelatedAWSResources:0/name": f"securityhub-{service}-{uid[:8]}",
            "RelatedAWSResources:0/type": "AWS::Config::ConfigRule",
            "aws/securityhub/ProductName": "Security Hub", "aws/securityhub/CompanyName": "AWS",
            "Resources:0/Id": resource,
            "aws/securityhub/FindingId": f"arn:aws:securityhub:{region}::product/aws/securityhub/{uid}"},
        "Resources": [{"Type": rtype, "Id": resource, "Partition": "aws", "Region": region, "Tags": _tags(rng)}],
        "Compliance": {"Status": "FAILED", "SecurityControlId": control_id,
                       "AssociatedStandards": [{"StandardsId": f"standards/{standards}"}]},
    }


def _inspector(rng: random.Random, uid: str, account: str, region: str) -> dict[str, Any]:
    package = PACKAGES[rng.randrange(len(PACKAGES))]
    cve = f"CVE-20{rng.randrange(19, 26)}-{rng.randrange(1000, 49999)}"
    instance = f"i-{uid[:17]}"
    return {
        "Id": f"arn:aws:inspector2:{region}:{account}:finding/{uid}",
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/inspector",
        "ProductName": "Inspector", "CompanyName": "Amazon", "GeneratorId": "AWSInspector",
        "Types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
        "Title": f"{cve} - {package}",
        "Description": f"A flaw was found in {package}. " + LOREM[: rng.randrange(200, 700)],
        "Remediation": {"Recommendation": {"Text": f"Upgrade {package} to the fixed version."}},
        "ProductFields": {"aws/inspector/FindingStatus": "ACTIVE", "aws/inspector/ProductVersion": "2",
                          "aws/inspector/inspectorScore": f"{rng.uniform(3, 10):.1f}",
                          "aws/inspector/instanceId": instance,
                          "aws/securityhub/FindingId": f"arn:aws:securityhub:{region}::product/aws/inspector/{uid}",
                          "aws/securityhub/ProductName": "Inspector", "aws/securityhub/CompanyName": "Amazon"},
        "Resources": [{"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:{region}:{account}:instance/{instance}",
                       "Partition": "aws", "Region": region, "Tags": _tags(rng),
                       "Details": {"AwsEc2Instance": {"Type": "m6i.large", "ImageId": f"ami-{uid[17:34]}",
                                                      "IpV4Addresses": [f"10.{rng.randrange(256)}.0.12"]}}}],
        "Vulnerabilities": [{"Id": cve, "VulnerablePackages": [
            {"Name": package, "Version": f"1.{rng.randrange(30)}.{rng.randrange(9)}", "PackageManager": "OS"}],
            "Vendor": {"Name": "NVD", "Url": f"https://nvd.nist.gov/vuln/detail/{cve}"}}],
    }


def _guardduty(rng: random.Random, uid: str, account: str, region: str) -> dict[str, Any]:
    ftype, verb = THREATS[rng.randrange(len(THREATS))]
    detector = _hex(account, 32)
    instance = f"i-{uid[:17]}"
    ip = f"198.51.100.{rng.randrange(1, 255)}"
    return {
        "Id": f"arn:aws:guardduty:{region}:{account}:detector/{detector}/finding/{uid}",
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/guardduty",
        "ProductName": "GuardDuty", "CompanyName": "Amazon",
        "GeneratorId": f"arn:aws:guardduty:{region}:{account}:detector/{detector}",
        "Types": [ftype], "Title": f"{ip} {verb} {instance}.",
        "Description": f"{ip} {verb} {instance}. " + LOREM[: rng.randrange(60, 300)],
        "SourceUrl": f"https://{region}.console.aws.amazon.com/guardduty/home?region={region}#/findings?fId={uid}",
        "ProductFields": {"aws/guardduty/service/serviceName": "guardduty",
                          "aws/guardduty/service/detectorId": detector, "aws/guardduty/service/archived": "false",
                          "aws/guardduty/service/action/networkConnectionAction/remoteIpDetails/ipAddressV4": ip,
                          "aws/guardduty/service/count": str(rng.randrange(1, 500))},
        "Resources": [{"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:{region}:{account}:instance/{instance}",
                       "Partition": "aws", "Region": region, "Tags": _tags(rng)}],
    }


def _config(rng: random.Random, uid: str, account: str, region: str) -> dict[str, Any]:
    rule = ("s3-bucket-versioning-enabled", "ec2-ebs-encryption-by-default", "iam-password-policy",
            "restricted-ssh")[rng.randrange(4)]
    return {
        "Id": f"arn:aws:config:{region}:{account}:config-rule/config-rule-{uid[:6]}/finding/{uid}",
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/config",
        "ProductName": "Config", "CompanyName": "AWS", "GeneratorId": f"arn:aws:config:{region}:{account}:{rule}",
        "Types": ["Software and Configuration Checks"], "Title": f"{rule} evaluation: NON_COMPLIANT",
        "Description": f"The AWS Config rule {rule} found the resource non-compliant. "
                       + LOREM[: rng.randrange(60, 250)],
        "ProductFields": {"aws/config/ConfigRuleName": rule, "aws/config/ConfigComplianceType": "NON_COMPLIANT",
                          "aws/securityhub/ProductName": "Config", "aws/securityhub/CompanyName": "AWS"},
        "Resources": [{"Type": "AwsS3Bucket", "Id": f"arn:aws:s3:::bucket-{uid[:12]}", "Partition": "aws",
                       "Region": region, "Tags": _tags(rng)}],
        "Compliance": {"Status": "FAILED"},
    }


def _access_analyzer(rng: random.Random, uid: str, account: str, region: str) -> dict[str, Any]:
    return {
        "Id": f"arn:aws:access-analyzer:{region}:{account}:analyzer/org-analyzer/arn:aws:s3:::shared-{uid[:10]}",
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/access-analyzer",
        "ProductName": "IAM Access Analyzer", "CompanyName": "AWS",
        "GeneratorId": f"aws/access-analyzer/arn:aws:access-analyzer:{region}:{account}:analyzer/org-analyzer",
        "Types": ["Software and Configuration Checks/AWS Security Best Practices/External Access Granted"],
        "Title": f"AwsS3Bucket/arn:aws:s3:::shared-{uid[:10]}/ allows cross-account access",
        "Description": f"AwsS3Bucket/arn:aws:s3:::shared-{uid[:10]}/ allows cross-account access from "
                       f"{ACCOUNTS[rng.randrange(len(ACCOUNTS))]}",
        "Remediation": {"Recommendation": {"Text": "If the access isn't intended, it indicates a potential security "
                                                   "risk. Use the resource policy to remove it.",
                                           "Url": "https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-"
                                                  "findings-remediate.html"}},
        "ProductFields": {"ResourceOwnerAccount": account, "aws/securityhub/ProductName": "IAM Access Analyzer"},
        "Resources": [{"Type": "AwsS3Bucket", "Id": f"arn:aws:s3:::shared-{uid[:10]}", "Partition": "aws",
                       "Region": region, "Tags": _tags(rng)}],
    }


def _macie(rng: random.Random, uid: str, account: str, region: str) -> dict[str, Any]:
    kind = ("SensitiveData:S3Object/Personal", "SensitiveData:S3Object/Financial",
            "Policy:IAMUser/S3BlockPublicAccessDisabled")[rng.randrange(3)]
    return {
        "Id": uid, "ProductArn": f"arn:aws:securityhub:{region}::product/aws/macie",
        "ProductName": "Macie", "CompanyName": "Amazon", "GeneratorId": f"aws/macie/{kind}",
        "Types": ["Sensitive Data Identifications/PII"], "Title": f"The S3 object contains {kind.split('/')[-1]} data.",
        "Description": f"The object contains {kind.split('/')[-1].lower()} information. " + LOREM[:120],
        "ProductFields": {"JobId": _hex(uid, 16), "aws/securityhub/ProductName": "Macie"},
        "Resources": [{"Type": "AwsS3Object", "Id": f"arn:aws:s3:::data-{uid[:8]}/exports/{uid[8:20]}.csv",
                       "Partition": "aws", "Region": region}],
    }


def _prowler(rng: random.Random, uid: str, account: str, region: str) -> dict[str, Any]:
    check = ("iam_user_mfa_enabled_console_access", "rds_instance_minor_version_upgrade_enabled",
             "cloudwatch_log_group_retention_policy_specific_days_enabled")[rng.randrange(3)]
    return {
        "Id": f"prowler-{check}-{account}-{region}-{uid[:10]}",
        "ProductArn": f"arn:aws:securityhub:{region}::product/prowler/prowler",
        "ProductName": "Prowler", "CompanyName": "Prowler", "GeneratorId": f"prowler-{check}",
        "Types": ["Software and Configuration Checks"], "Title": check.replace("_", " ").capitalize(),
        "Description": LOREM[: rng.randrange(100, 500)],
        "Remediation": {"Recommendation": {"Text": "Enable the setting.",
                                           "Url": f"https://hub.prowler.com/check/{check}"}},
        "ProductFields": {"ProviderName": "Prowler", "ProviderVersion": "4.3.0"},
        "Resources": [{"Type": "AwsIamUser", "Id": f"arn:aws:iam::{account}:user/u-{uid[:6]}", "Partition": "aws",
                       "Region": region, "Tags": _tags(rng)}],
        "Compliance": {"Status": "FAILED", "RelatedRequirements": ["CIS-2.0 1.10"]},
    }


_BUILDERS = {"control": _control, "inspector": _inspector, "guardduty": _guardduty, "config": _config,
             "access-analyzer": _access_analyzer, "macie": _macie, "prowler": _prowler}
