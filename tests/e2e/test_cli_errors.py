"""The command line's manners: one clear line per failure and a documented exit code, never a traceback; global
options before or after the subcommand; JSON mode is JSON on every stderr line; what `run` says at start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sh2jira.cli import main
from tests.e2e.world import World, cli_env, finding, fresh, sandbox, world  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(cli_env: World) -> World:
    return cli_env


def _recent(world: World, n: int = 3) -> None:
    now = datetime.now(UTC) - timedelta(minutes=30)
    world.import_findings([fresh(finding(i), now) for i in range(n)])


def _sh2jira(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed entry point in a child process: what a user's shell sees, traceback or not."""
    return subprocess.run([sys.executable, "-m", "sh2jira", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


def _one_line(text: str) -> str:
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# --- no tracebacks: one line and an exit code ---------------------------------------------------------------

def test_an_unknown_log_level_is_one_line_and_exit_2_before_or_after_the_command() -> None:
    for argv in (["--log-level", "VERBOSE", "validate"], ["validate", "--log-level", "VERBOSE"]):
        done = _sh2jira(*argv)
        assert done.returncode == 2
        line = _one_line(done.stderr)
        assert "'VERBOSE' is not a log level" in line and "DEBUG, INFO, WARNING, ERROR" in line
    done = _sh2jira("validate", env={"SH2JIRA_LOG_LEVEL": "chatty"})
    assert done.returncode == 2 and "'chatty' is not a log level" in _one_line(done.stderr)


def test_an_unknown_aws_profile_is_one_line_and_exit_1(env: World, capsys: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = env.write_config()
    monkeypatch.setenv("AWS_PROFILE", "nope")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(env.tmp / "no-aws-config"))
    assert main(["--log-level", "WARNING", "run", "--once", "-c", str(cfg)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("sh2jira: cannot start: AWS profile 'nope' is not configured"), line


def test_an_unknown_aws_profile_in_a_real_process_prints_no_traceback(env: World) -> None:
    cfg = env.write_config()
    done = _sh2jira("run", "--once", "-c", str(cfg), "--log-level", "ERROR",
                    env={"AWS_PROFILE": "nope", "AWS_CONFIG_FILE": str(env.tmp / "none")})
    assert done.returncode == 1
    assert "AWS profile 'nope' is not configured" in _one_line(done.stderr)


def test_usage_errors_are_one_line_exit_2(capsys: Any) -> None:
    assert main(["run", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in _one_line(capsys.readouterr().err)
    assert main(["explode"]) == 2
    assert "invalid choice: 'explode'" in _one_line(capsys.readouterr().err)
    assert main(["run", "--metrics-port", "http"]) == 2
    assert "'http' is not a port number" in _one_line(capsys.readouterr().err)


def test_an_unexpected_error_is_one_line_exit_1_and_the_traceback_only_at_debug(tmp_path: Path, capsys: Any) -> None:
    # `schema -o` into a folder that does not exist: an OSError nobody anticipated.
    target = str(tmp_path / "missing" / "schema.json")
    assert main(["schema", "-o", target]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("sh2jira: schema failed: FileNotFoundError:"), line
    assert main(["--log-level", "DEBUG", "schema", "-o", target]) == 1
    assert "Traceback" in capsys.readouterr().err


# --- global options before or after; JSON mode --------------------------------------------------------------

def test_global_options_work_before_and_after_the_subcommand(env: World, capsys: Any) -> None:
    cfg = str(env.write_config())
    for argv in (["--log-format", "json", "--log-level", "INFO", "validate", "-c", cfg],
                 ["validate", "-c", cfg, "--log-format", "json", "--log-level", "INFO"]):
        bad = env.tmp / "bad.yaml"
        bad.write_text(Path(cfg).read_text().replace("max_attempts: 5", "max_attempts: 50"))
        argv = [a if a != cfg else str(bad) for a in argv]
        assert main(argv) == 2
        (line,) = capsys.readouterr().err.splitlines()
        event = json.loads(line)
        assert event["level"] == "error" and event["key"] == "securityhub.max_attempts"
        line_no = next(i for i, row in enumerate(bad.read_text().splitlines(), 1) if "max_attempts: 50" in row)
        assert event["file"] == str(bad) and event["line"] == line_no


def test_in_json_mode_every_stderr_line_is_a_json_object_including_the_failure_line(
        env: World, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _recent(env)
    cfg = str(env.write_config())
    assert main(["run", "--once", "-c", cfg, "--log-format", "json"]) == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.err.splitlines()]  # each line parses
    assert any(e["message"].startswith("one cycle: reading Security Hub findings") for e in events)
    assert any(e["message"].startswith("cycle done:") for e in events)
    (summary,) = [json.loads(line) for line in captured.out.splitlines()]  # stdout: the counts, as JSON
    assert summary["message"] == "summary" and summary["created"] == 3 and summary["dry_run"] is False

    monkeypatch.delenv("SH2JIRA_TEST_TOKEN")
    assert main(["--log-format", "json", "run", "--once", "-c", cfg]) == 1
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert events[-1]["level"] == "error" and events[-1]["message"].startswith("cannot start: ")

    assert main(["--log-format", "json", "run", "--nope"]) == 2  # even a usage error
    assert json.loads(capsys.readouterr().err)["message"].startswith("unrecognized arguments")


def test_the_cycle_failure_line_is_json_too(env: World, capsys: Any) -> None:
    _recent(env)
    cfg = str(env.write_config())
    env.sandbox.securityhub_app.inject_fault("GetFindings", status=400, code="InvalidInputException",
                                             message="broken on purpose", count=100)
    assert main(["run", "--once", "-c", cfg, "--log-format", "json"]) == 1
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert events[-1]["level"] == "error" and events[-1]["message"].startswith("cycle failed: ")


def test_dry_run_keeps_the_plan_as_text_on_stdout_in_json_mode(env: World, capsys: Any) -> None:
    _recent(env, 2)
    assert main(["run", "--dry-run", "-c", str(env.write_config()), "--log-format", "json"]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert sum(line.startswith("CREATE [SEC/") for line in out) == 2
    assert json.loads(out[-1])["dry_run"] is True
    assert all(json.loads(line) for line in captured.err.splitlines())


# --- what run says at start; demo takes -c and a file -------------------------------------------------------

def test_run_says_at_start_what_it_reads_and_where_it_writes(env: World, capsys: Any) -> None:
    cfg = env.write_config(regions="us-east-1, eu-west-1")
    assert main(["run", "--dry-run", "-c", str(cfg)]) == 0
    start = next(line for line in capsys.readouterr().err.splitlines() if "reading Security Hub" in line)
    for part in ("us-east-1, eu-west-1", "the default credential chain's account", env.sandbox.securityhub.url,
                 f"Jira issues at {env.sandbox.jira.url}", "projects SEC", str(env.tmp / "ledger.sqlite3"),
                 "link-back full", "dry run"):
        assert part in start, (part, start)


def test_long_running_mode_says_at_start_what_it_reads_and_where_it_writes(world: World) -> None:
    from tests.e2e.test_running import start, wait_for

    proc = start(world, str(world.write_config()))
    try:
        first = wait_for(proc, "reading Security Hub")[0]  # the very first line, before any cycle
        message = first["message"]
        assert message.startswith("every 300 s: reading Security Hub findings in us-east-1"), message
        assert f"Jira issues at {world.sandbox.jira.url}" in message and "projects SEC" in message
        assert str(world.tmp / "ledger.sqlite3") in message
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_demo_without_findings_at_the_path_is_an_error(tmp_path: Path, capsys: Any) -> None:
    assert main(["demo", "--findings", str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in _one_line(capsys.readouterr().err)
    assert main(["demo", "--findings", str(tmp_path)]) == 2  # a folder with no *.json
    assert "has no *.json files" in _one_line(capsys.readouterr().err)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main(["demo", "--findings", str(empty)]) == 2
    assert "no finding could be loaded" in capsys.readouterr().err


# --- the token: from a file (deploy/README), never echoed ---------------------------------------------------

def test_the_token_from_a_mounted_file_works(env: World, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _recent(env, 1)
    secret = env.tmp / "token"
    secret.write_text(env.sandbox.jira_token() + "\n")
    text = env.write_config().read_text().replace("  token_env: SH2JIRA_TEST_TOKEN\n",
                                                   f"  token: {{file: {secret}}}\n")
    cfg = env.tmp / "file-token.yaml"
    cfg.write_text(text)
    monkeypatch.delenv("SH2JIRA_TEST_TOKEN")
    assert main(["run", "--once", "-c", str(cfg)]) == 0
    assert "created=1" in capsys.readouterr().out


def test_a_pasted_token_is_never_echoed_by_validate_or_run(env: World, capsys: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pasted = "NDc4MDM1Nzg2ODk5OkAbC"  # a Data Center PAT shape: letters and digits only
    monkeypatch.setenv(pasted, "x")
    for key in (f"  token_env: {pasted}\n", f"  token: {{env: {pasted}}}\n"):
        text = env.write_config().read_text().replace("  token_env: SH2JIRA_TEST_TOKEN\n", key)
        cfg = env.tmp / "pasted.yaml"
        cfg.write_text(text)
        for argv in (["validate", "-c", str(cfg)], ["run", "--once", "-c", str(cfg)],
                     ["run", "--once", "-c", str(cfg), "--log-format", "json"]):
            assert main(argv) == 2
            captured = capsys.readouterr()
            assert pasted not in captured.err + captured.out
            assert "is not an environment variable name" in captured.err
