"""Security end to end: no secret in any output, JQL only from quoted values, TLS on by default."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sh2jira.cli import main
from sh2jira.config import load_config
from sh2jira.jira_sink import quote_jql
from sh2jira.sandbox.jql import compile_jql
from tests.e2e.world import ASFF, NOW, World, finding, fresh, sandbox, world  # noqa: F401

HOSTILE_JQL = ['a" OR project != "X', "x' OR 1=1", 'back\\slash"', '") OR labels IS EMPTY OR ("', "new\nline",
               "tab\there", "bell\x07\x9f", "ünïcödé", "\\\"", "labels = x", "%{}*/+^$#@?;", "a' OR labels != 'b"]


@pytest.mark.parametrize("value", HOSTILE_JQL)
def test_jql_values_are_always_one_quoted_literal(value: str) -> None:
    query = compile_jql(f"labels = {quote_jql(value)}", now=NOW)
    doc = {"labels": [value], "key": "SEC-1", "id": "1", "project": "SEC"}
    other = {**doc, "labels": ["x"]}
    assert query.matches(doc) and not query.matches(other)


def test_label_search_with_hostile_values_against_the_stand_in(world: World) -> None:
    sink = world.syncer().sink
    assert sink.find_by_labels([v for v in HOSTILE_JQL if "\n" not in v and "\t" not in v]) == {}


def test_no_secret_in_logs_errors_or_output(world: World, capsys: Any, caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    token = world.sandbox.jira_token()
    secrets = {token, base64.b64encode(f"{world.sandbox.jira_user()}:{token}".encode()).decode()}
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECURITYHUB", world.sandbox.securityhub.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret-key")
    caplog.set_level(logging.DEBUG)
    recent = datetime.now(UTC) - timedelta(hours=1)  # the CLI runs on the real clock
    world.import_findings([fresh(finding(n), recent) for n in range(5)])
    cfg = str(world.write_config())
    monkeypatch.setenv("SH2JIRA_TEST_TOKEN", token)
    jira = world.sandbox.jira_app
    # Failures of every kind, each of which ends up in a message somewhere.
    jira.inject_fault("POST", r"/issue/bulk$", status=500, body={"errorMessages": ["boom"], "errors": {}})
    assert main(["--log-level", "DEBUG", "run", "--once", "-c", cfg]) == 3  # ran; the creates wait for a retry
    jira.inject_fault("GET", r"/search", status=400, times=5)
    main(["--log-level", "DEBUG", "run", "--once", "-c", cfg])
    assert main(["--log-level", "DEBUG", "run", "--dry-run", "-c", cfg]) == 0
    assert main(["explain", "-c", cfg, str(ASFF / "awsdocs-config-typical-finding.json")]) == 0
    jira.inject_fault(None, r"/serverInfo", status=401, times=5)
    assert main(["--log-level", "DEBUG", "run", "--once", "-c", cfg]) == 1
    monkeypatch.setenv("SH2JIRA_TEST_TOKEN", token + "-expired")
    assert main(["--log-level", "DEBUG", "run", "--once", "-c", cfg]) == 1
    out = capsys.readouterr()
    everything = out.out + out.err + caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "boom" in everything or "outcome unknown" in everything  # the failures were really reported
    for secret in secrets | {"example-secret-key"}:
        assert secret not in everything


def test_tls_verification_is_on_unless_turned_off(world: World) -> None:
    cfg = load_config(world.write_config())
    assert cfg.jira.verify_tls is True
    assert world.syncer(cfg).sink.client._session.verify is True

