"""The command line as an admin uses it: validate, explain, run --once / --dry-run, demo — through main()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sh2jira.cli import main
from tests.e2e.world import ASFF, NOW, World, cli_env, fresh, sandbox, shared_findings, world  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(cli_env: World) -> World:
    return cli_env


def test_validate_ok_and_broken_rulebook_names_key_and_line(env: World, capsys: Any) -> None:
    good = env.write_config()
    assert main(["validate", "-c", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    text = good.read_text().replace("severity: [INFORMATIONAL]", "severity: [INFORMATIONAL, SEVERE]")
    bad = env.tmp / "bad.yaml"
    bad.write_text(text)
    assert main(["validate", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "SEVERE" in row)
    assert f"bad.yaml:{line}:" in err and "rulebook.rules[0].match.severity[1]" in err and "SEVERE" in err


def test_run_once_creates_then_writes_nothing(env: World, capsys: Any) -> None:
    docs = [fresh(f, _recent()) for _, f in shared_findings()[:8]]
    env.import_findings(docs)
    cfg = env.write_config()
    assert main(["run", "--once", "-c", str(cfg)]) == 0
    first = capsys.readouterr().out
    created = len(env.issues())
    assert created > 0 and f"created={created}" in first
    assert main(["run", "--once", "-c", str(cfg)]) == 0
    assert "created=0" in capsys.readouterr().out and len(env.issues()) == created


def test_run_dry_run_prints_the_plan_and_writes_nothing(env: World, capsys: Any) -> None:
    env.import_findings([fresh(f, _recent()) for _, f in shared_findings()[:8]])
    assert main(["run", "--dry-run", "-c", str(env.write_config())]) == 0
    out = capsys.readouterr().out
    assert "CREATE [SEC/" in out and "dry run:" in out
    assert env.issues() == [] and not (env.tmp / "ledger.sqlite3").exists()


def test_run_once_fails_cleanly_without_token_or_jira(env: World, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = env.write_config()
    monkeypatch.delenv("SH2JIRA_TEST_TOKEN")
    assert main(["run", "--once", "-c", str(cfg)]) == 1
    assert "SH2JIRA_TEST_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("SH2JIRA_TEST_TOKEN", "wrong-token")
    assert main(["run", "--once", "-c", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "401" in err and "wrong-token" not in err


def test_start_check_names_missing_project_and_priority(env: World, capsys: Any) -> None:
    rulebook = """\
defaults: {project: NOPE, issue_type: Task}
priorities: {CRITICAL: Blocker}
"""
    assert main(["run", "--once", "-c", str(env.write_config(rulebook=rulebook))]) == 1
    err = capsys.readouterr().err
    assert "NOPE" in err and "Blocker" in err


def test_explain_shows_rule_priority_and_issue(env: World, capsys: Any) -> None:
    cfg = env.write_config()
    path = ASFF / "jira-sample-imported-cis-1.22-new.json"
    assert main(["explain", "-c", str(cfg), str(path)]) == 0
    out = capsys.readouterr().out
    assert "decision: ticket" in out and "priority High" in out
    assert "h3. Remediation" in out and "sh2jira-" in out
    bad = env.tmp / "bad.json"
    bad.write_text(json.dumps({"Id": "x"}))
    assert main(["explain", "-c", str(cfg), str(bad)]) == 2
    assert "ProductArn is missing" in capsys.readouterr().err


def test_demo_runs_on_both_flavours(capsys: Any) -> None:
    for flavour in ("cloud", "datacenter"):
        assert main(["demo", "--flavour", flavour]) == 0
        out = capsys.readouterr().out
        assert "created=8" in out and "Link-backs on findings (8 of 10)" in out, out


def test_demo_takes_a_folder_and_a_config(tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "findings"
    folder.mkdir()
    for name in ("awsdocs-securityhub-control-cis140-1.4-root-access-key.json", "trivy-asff-alpine-cve-2019-1549.json"):
        (folder / name).write_text((ASFF / name).read_text())
    (folder / "broken.json").write_text("{not json")
    assert main(["demo", "--findings", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "broken.json: skipped" in out and "Loaded 2 finding(s)" in out
    config = tmp_path / "mine.yaml"  # -c, like every other command; its endpoints are the sandbox's
    config.write_text((ROOT / "sh2jira" / "samples" / "demo.yaml").read_text().replace("labels: [security-hub]",
                                                                            "labels: [from-my-config]"))
    one = tmp_path / "one.json"  # a file, not a folder; made recent so the first run's look-back reads it
    one.write_text(json.dumps(fresh(json.loads((ASFF / "trivy-asff-alpine-cve-2019-1549.json").read_text()),
                                    _recent())))
    assert main(["demo", "-c", str(config), "--findings", str(one)]) == 0
    out = capsys.readouterr().out
    assert "Loaded 1 finding(s)" in out and "from-my-config" in out and "created=1" in out, out


def _recent() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(hours=1)


assert NOW  # the e2e world's fixed clock is not used here: the CLI runs on the real clock
