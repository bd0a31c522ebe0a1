"""An end-to-end test world: both stand-ins served on 127.0.0.1 (port 0), a config file written the way an
admin would, and sh2jira built from it exactly as `sh2jira run` builds itself — real boto3 and jira clients."""

from __future__ import annotations

import copy
import itertools
import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError

from sh2jira.app import build_syncer
from sh2jira.config import Config, load_config
from sh2jira.finding import unwrap_documents
from sh2jira.sandbox import launch
from sh2jira.sync import CycleReport, Syncer
from tests.paths import ASFF_DIR

ASFF = ASFF_DIR  # the real findings (tests/data/asff), as the e2e modules import it
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

BASE_CONFIG = """\
securityhub:
  regions: [{regions}]
  link_back: {link_back}
  source: {source}
  first_run_lookback_days: 30
  max_attempts: 5
jira:
  url: {jira_url}
  flavour: {flavour}
  user: "{user}"
  token_env: SH2JIRA_TEST_TOKEN
  timeout_seconds: 10
  remote_links: {remote_links}
ledger:
  path: {ledger}
rulebook:
{rulebook}
"""

DEFAULT_RULEBOOK = """\
defaults:
  project: SEC
  issue_type: Task
  labels: [security-hub]
filters:
  severity: [CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL]
control_findings: {control_findings}
rules:
  - name: no-informational
    match: {{severity: [INFORMATIONAL]}}
    action: skip
  - name: guardduty-to-bugs
    match: {{product: [GuardDuty, guardduty]}}
    route: {{issue_type: Bug, labels: [threat]}}
"""


BASE: dict[str, Any] = {
    "SchemaVersion": "2018-10-08", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
    "ProductName": "Security Hub", "CompanyName": "AWS", "AwsAccountId": "111122223333", "Region": "us-east-1",
    "GeneratorId": "security-control/S3.8", "Types": ["Software and Configuration Checks"],
    "CreatedAt": "2026-11-20T00:00:00.000Z", "Severity": {"Label": "HIGH", "Normalized": 70},
    "Title": "S3 general purpose buckets should block public access", "Description": "The bucket is public.",
    "Remediation": {"Recommendation": {"Text": "Block public access.", "Url": "https://docs.example.com/s3-8"}},
    "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::bucket-1", "Region": "us-east-1"}],
    "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.8"}, "RecordState": "ACTIVE",
}


def finding(n: int) -> dict[str, Any]:
    """A valid, ticketable control finding (HIGH, FAILED, NEW), distinct per n."""
    return {**BASE, "Id": f"arn:aws:securityhub:us-east-1:111122223333:security-control/S3.8/finding/{n:04d}",
            "Resources": [{**BASE["Resources"][0], "Id": f"arn:aws:s3:::bucket-{n}"}]}



def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def shared_findings() -> list[tuple[str, dict[str, Any]]]:
    """(file name, finding) for every finding of tests/data/asff that is JSON."""
    out = []
    for path in sorted(ASFF.glob("*.json")):
        for finding in unwrap_documents(json.loads(path.read_text(encoding="utf-8"))):
            out.append((path.name, finding))
    return out


def fresh(finding: dict[str, Any], updated: datetime) -> dict[str, Any]:
    """A copy of a finding as its provider would send it now (UpdatedAt moved into the read window)."""
    doc = copy.deepcopy(finding)
    doc["UpdatedAt"] = iso(updated)
    return doc


@dataclass
class World:
    sandbox: launch.Sandbox
    tmp: Path
    flavour: str
    now: datetime = NOW
    session: boto3.session.Session = field(init=False)

    def __post_init__(self) -> None:
        self.session = boto3.session.Session(aws_access_key_id=launch.ACCESS_KEY,
                                             aws_secret_access_key=launch.SECRET_KEY)

    # -- config ---------------------------------------------------------------------------------------------
    def write_config(self, *, rulebook: str | None = None, link_back: str = "full", regions: str = "us-east-1",
                     control_findings: str = "by-finding", remote_links: bool = False, name: str = "c.yaml",
                     ledger: str = "ledger.sqlite3", source: str = "cspm") -> Path:
        rb = rulebook if rulebook is not None else DEFAULT_RULEBOOK.format(control_findings=control_findings)
        text = BASE_CONFIG.format(regions=regions, link_back=link_back, jira_url=self.sandbox.jira.url,
                                  flavour=self.flavour, user=self.sandbox.jira_user(),
                                  remote_links=str(remote_links).lower(), ledger=ledger, source=source,
                                  rulebook=textwrap.indent(rb, "  "))
        path = self.tmp / name
        path.write_text(text)
        return path

    def config(self, *, check_minutes: int = 0, **kw: Any) -> Config:
        """The config file's settings, pointed at the stand-in. The console-closure query runs every cycle
        (`check_minutes` 0) unless a test asks for the interval: most tests move no clock between cycles."""
        cfg = load_config(self.write_config(**kw))
        hub = cfg.securityhub.model_copy(update={"endpoint_url": self.sandbox.securityhub.url})
        closure = cfg.closure.model_copy(update={"securityhub_check_minutes": check_minutes})
        return cfg.model_copy(update={"securityhub": hub, "closure": closure})

    def environ(self) -> dict[str, str]:
        return {"SH2JIRA_TEST_TOKEN": self.sandbox.jira_token()}

    def syncer(self, cfg: Config | None = None, **kw: Any) -> Syncer:
        return build_syncer(cfg or self.config(), session=self.session, environ=self.environ(),
                            now=lambda: self.now, **kw)

    def cycle(self, cfg: Config | None = None, **kw: Any) -> CycleReport:
        return self.syncer(cfg, **kw).run_cycle()

    # -- Security Hub side ------------------------------------------------------------------------------------
    def client(self, region: str = "us-east-1") -> Any:
        return self.session.client("securityhub", region_name=region, endpoint_url=self.sandbox.securityhub.url)

    def import_findings(self, findings: list[dict[str, Any]], region: str = "us-east-1") -> dict[str, Any]:
        """BatchImportFindings through boto3, as a provider would. What boto3 itself refuses to send (its
        client-side validation) is counted as failed, as it never reaches Security Hub."""
        result: dict[str, Any] = {"SuccessCount": 0, "FailedFindings": []}
        client = self.client(region)
        for doc in findings:
            try:
                reply = client.batch_import_findings(Findings=[doc])
            except (ParamValidationError, KeyError) as exc:
                result["FailedFindings"].append({"Id": doc.get("Id"), "ErrorCode": "ClientValidation",
                                                 "ErrorMessage": str(exc)[:200]})
                continue
            result["SuccessCount"] += reply["SuccessCount"]
            result["FailedFindings"] += reply["FailedFindings"]
        return result

    def findings(self) -> list[dict[str, Any]]:
        return self.sandbox.securityhub_app.findings()

    def finding(self, finding_id: str) -> dict[str, Any]:
        return next(f for f in self.findings() if f["Id"] == finding_id)

    def sh_calls(self, operation: str) -> int:
        return self.sandbox.securityhub_app.calls.count(operation)

    # -- Jira side --------------------------------------------------------------------------------------------
    def issues(self) -> list[dict[str, Any]]:
        return self.sandbox.jira_app.issues()

    def issue_for(self, finding_id: str, product_arn: str | None = None) -> dict[str, Any]:
        from sh2jira.finding import FindingKey

        found = [f for f in self.findings() if f["Id"] == finding_id]
        arn = product_arn or found[0]["ProductArn"]
        label = FindingKey(arn, finding_id).label
        matches = [i for i in self.issues() if label in i["labels"]]
        assert len(matches) == 1, f"{len(matches)} issues carry {label}"
        return matches[0]

    def jira_writes(self) -> int:
        return sum(n for route, n in self.sandbox.jira_app.calls.items() if not route.startswith("GET "))

    def reset_counts(self) -> None:
        self.sandbox.jira_app.reset_calls()
        self.sandbox.securityhub_app.calls.reset()


class Provider:
    """Acts as the finding's provider: every send moves UpdatedAt forward, as real re-evaluations do."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.minutes = itertools.count(1)

    def send(self, doc: dict[str, Any]) -> dict[str, Any]:
        sent = fresh(doc, NOW - timedelta(hours=3) + timedelta(minutes=next(self.minutes)))
        result = self.world.import_findings([sent])
        assert result["FailedFindings"] == [], result
        return sent


@pytest.fixture(scope="module", params=["cloud", "datacenter"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[launch.Sandbox]:
    box = launch.start(request.param)
    yield box
    box.stop()


@pytest.fixture
def world(sandbox: launch.Sandbox, tmp_path: Path) -> World:
    sandbox.securityhub_app.reset()
    sandbox.jira_app.reset()
    return World(sandbox, tmp_path, sandbox.jira_app.flavour)


@pytest.fixture
def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The environment `sh2jira` reads when a test runs it through main(): the Jira token (under both names the
    tests' configs use), the Security Hub stand-in's endpoint, dummy AWS credentials, no AWS profile, text logs."""
    for name in ("SH2JIRA_TEST_TOKEN", "SH2JIRA_JIRA_TOKEN"):
        monkeypatch.setenv(name, world.sandbox.jira_token())
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECURITYHUB", world.sandbox.securityhub.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("SH2JIRA_LOG_FORMAT", raising=False)
    return world
