"""`explain` decides through the code `run` uses: for every sample finding its verdict is the dry-run's line."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sh2jira.cli import main
from sh2jira.sandbox import launch
from tests.e2e.world import World, cli_env, fresh, sandbox, world  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
VERDICT = "verdict (as run decides it for a new finding): "
# A third rulebook with the server-side filters and a rule that skips, so every kind of verdict occurs.
FILTERED = """\
securityhub:
  regions: [us-east-1]
jira:
  url: http://127.0.0.1:8080
  user: sh2jira-bot@example.com
rulebook:
  defaults: {project: SEC}
  filters:
    severity: [CRITICAL, HIGH]
    product: [Security Hub, GuardDuty, Inspector]
    account: ["111122223333"]
  rules:
    - name: no-iam
      match: {control_id: ["IAM.*"]}
      action: skip
"""




def _pointed(world: World, text: str, name: str) -> Path:
    """The config as written, with its Jira URL, user and ledger set for this sandbox (flavour too)."""
    text = re.sub(r"(?m)^  url: .*$", f"  url: {world.sandbox.jira.url}", text, count=1)
    text = re.sub(r"(?m)^  user: .*$", f"  user: \"{world.sandbox.jira_user()}\"", text, count=1)
    text = re.sub(r"(?m)^  path: .*$", "  path: ledger.sqlite3", text, count=1)
    path = world.tmp / name
    path.write_text(text)
    return path


def _samples(world: World) -> Path:
    """The shipped samples plus one finding in a region no config reads, made recent so the cycle reads them."""
    recent = datetime.now(UTC) - timedelta(hours=1)
    docs = [fresh(f, recent) for f in launch.sample_findings()]
    elsewhere = dict(docs[0], Id=docs[0]["Id"] + "-ap", Region="ap-southeast-2")
    docs.append(elsewhere)
    for doc in docs:
        result = world.sandbox.securityhub_app.load([doc])
        assert result["FailedFindings"] == [], result
    path = world.tmp / "findings.json"
    path.write_text(json.dumps({"Findings": docs}))
    return path


def _dry_run_lines(out: str) -> dict[str, str]:
    lines = {}
    for line in out.splitlines():
        m = re.match(r"^(?:CREATE \[.*\] .*  \(finding (?P<a>.+)\)|SKIP   (?P<b>.+?): .*)$", line)
        if m:
            lines[m.group("a") or m.group("b")] = line
    return lines


def _verdicts(out: str) -> dict[str, str]:
    found: dict[str, str] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("finding "):
            current = line[len("finding "):]
        elif line.startswith(VERDICT):
            found[current] = line[len(VERDICT):]
    return found


@pytest.mark.parametrize("source", ["config.example.yaml", "sh2jira/samples/demo.yaml", "filtered"])
def test_explain_gives_the_dry_run_verdict_for_every_sample_finding(cli_env: World, capsys: Any,
                                                                    source: str) -> None:
    text = FILTERED if source == "filtered" else (ROOT / source).read_text()
    if cli_env.flavour == "datacenter":
        text = text.replace("user: sh2jira-bot@example.com", 'user: ""')
    config = _pointed(cli_env, text, "c.yaml")
    findings = _samples(cli_env)

    assert main(["explain", "-c", str(config), str(findings)]) == 0
    explained = _verdicts(capsys.readouterr().out)
    assert main(["run", "--dry-run", "-c", str(config)]) == 0
    planned = _dry_run_lines(capsys.readouterr().out)

    assert len(explained) == len(launch.sample_findings()) + 1
    for finding_id, line in explained.items():
        if line.startswith("NOT READ "):
            assert finding_id not in planned, (finding_id, line)
        else:
            assert planned.get(finding_id) == line, (finding_id, line, planned.get(finding_id))
    assert set(planned) <= set(explained)
    if source == "config.example.yaml":  # the case that used to disagree: filters.severity decides
        info = next(v for k, v in explained.items() if k.endswith("demo-config-1"))
        assert info.startswith("SKIP ") and "not in rulebook.filters.severity" in info
    if source == "filtered":
        assert any("not in rulebook.filters.product" in v for v in explained.values())
        assert any("rule no-iam says skip" in v for v in explained.values())
    assert any("not in securityhub.regions" in v for v in explained.values())
