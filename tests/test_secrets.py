"""Token sources: env, file, AWS Secrets Manager (moto), and that no error or log line ever carries the token."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from sh2jira.secrets import TokenSource, TokenSourceError, resolve_token

TOKEN = "ATATT3xFfGF0-sekrit-t0ken-value-9f8e7d"
REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto-backed Secrets Manager with fake credentials; yields a session for writing secrets."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def put_secret(session: Any, name: str, value: str | bytes, region: str = REGION) -> str:
    client = session.client("secretsmanager", region_name=region)
    kwargs: dict[str, Any] = {"SecretBinary": value} if isinstance(value, bytes) else {"SecretString": value}
    return str(client.create_secret(Name=name, **kwargs)["ARN"])


# -- the model -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data, fragment", [
    ({}, "exactly one of env, file or aws_secret, not none"),
    ({"env": "A", "file": "/x"}, "not env and file"),
    ({"env": "A", "aws_secret": "s"}, "not env and aws_secret"),
    ({"env": "A", "aws_region": "eu-west-1"}, "go only with aws_secret"),
    ({"file": "/x", "aws_secret_key": "token"}, "go only with aws_secret"),
    ({"env": "A", "token": "x"}, "Extra inputs are not permitted"),
    ({"aws_secret": "s", "aws_region": "Ireland"}, "aws_region"),
])
def test_source_model_rejects_ambiguous_or_unknown(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        TokenSource.model_validate(data)
    assert fragment in str(info.value)


def test_source_model_accepts_each_kind_and_describes_it() -> None:
    assert TokenSource(env="JIRA_TOKEN").describe() == "env JIRA_TOKEN"
    assert TokenSource(file="/run/secrets/jira/token").describe() == "file /run/secrets/jira/token"
    src = TokenSource(aws_secret="prod/sh2jira", aws_secret_key="token", aws_region="eu-west-1")
    assert src.describe() == "aws_secret prod/sh2jira (key 'token')"


@pytest.mark.parametrize("data", [TOKEN, {"env": TOKEN + "!"}, {"env": "A", "file": TOKEN}])
def test_a_pasted_token_is_never_echoed_by_validation(data: Any) -> None:
    with pytest.raises(ValidationError) as info:
        TokenSource.model_validate(data)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


# -- env and file --------------------------------------------------------------------------------------------
def test_env_source_reads_the_variable_and_strips_one_trailing_newline() -> None:
    assert resolve_token({"env": "JIRA_TOKEN"}, environ={"JIRA_TOKEN": TOKEN + "\n"}) == TOKEN


def test_env_source_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SH2JIRA_TEST_TOKEN", TOKEN)
    assert resolve_token(TokenSource(env="SH2JIRA_TEST_TOKEN")) == TOKEN


def test_missing_env_names_the_variable() -> None:
    with pytest.raises(TokenSourceError, match="env JIRA_TOKEN: the environment variable is not set"):
        resolve_token({"env": "JIRA_TOKEN"}, environ={})


def test_file_source_strips_the_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\r\n")
    assert resolve_token({"file": str(path)}) == TOKEN


@pytest.mark.parametrize("make, fragment", [
    (lambda d: d / "absent", "no such file"),
    (lambda d: d, "is a directory"),
])
def test_unreadable_file_says_why(tmp_path: Path, make: Any, fragment: str) -> None:
    target = make(tmp_path)
    with pytest.raises(TokenSourceError) as info:
        resolve_token({"file": str(target)})
    assert f"file {target}" in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("content, fragment", [
    ("", "it is empty"),
    ("\n", "it is empty"),
    (f"{TOKEN}\nsecond-line\n", "a line break"),
    (f" {TOKEN}", "whitespace or control characters"),
    (f"{TOKEN}\x00", "whitespace or control characters"),
])
def test_file_content_must_be_one_clean_line(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(TokenSourceError) as info:
        resolve_token({"file": str(path)})
    assert fragment in str(info.value)
    assert TOKEN not in str(info.value)


# -- AWS Secrets Manager ---------------------------------------------------------------------------------------
def test_plain_secret_string(aws: Any) -> None:
    put_secret(aws, "sh2jira/jira", TOKEN + "\n")
    assert resolve_token({"aws_secret": "sh2jira/jira"}, session=aws) == TOKEN


def test_json_secret_with_key(aws: Any) -> None:
    put_secret(aws, "sh2jira/json", json.dumps({"user": "bot@example.com", "token": TOKEN}))
    assert resolve_token({"aws_secret": "sh2jira/json", "aws_secret_key": "token"}, session=aws) == TOKEN


def test_region_is_taken_from_the_arn(aws: Any) -> None:
    arn = put_secret(aws, "sh2jira/elsewhere", TOKEN, region="ap-southeast-2")
    assert ":ap-southeast-2:" in arn
    assert resolve_token({"aws_secret": arn}, session=aws) == TOKEN  # the session's region is eu-west-1


def test_explicit_region_wins(aws: Any) -> None:
    put_secret(aws, "sh2jira/us", TOKEN, region="us-east-2")
    assert resolve_token({"aws_secret": "sh2jira/us", "aws_region": "us-east-2"}, session=aws) == TOKEN
    with pytest.raises(TokenSourceError, match="no such secret in region eu-west-1"):
        resolve_token({"aws_secret": "sh2jira/us"}, session=aws)


def test_binary_secret_holding_utf8_text(aws: Any) -> None:
    put_secret(aws, "sh2jira/bin", TOKEN.encode())
    assert resolve_token({"aws_secret": "sh2jira/bin"}, session=aws) == TOKEN


def test_unknown_secret_is_a_clear_error(aws: Any) -> None:
    with pytest.raises(TokenSourceError) as info:
        resolve_token({"aws_secret": "sh2jira/missing"}, session=aws)
    assert str(info.value) == ("Jira token from aws_secret sh2jira/missing: ResourceNotFoundException: "
                               f"no such secret in region {REGION}")


@pytest.mark.parametrize("stored, key, fragment", [
    (json.dumps({"user": "bot", "token": TOKEN}), None, "holds a JSON object; name the key"),
    (json.dumps({"user": "bot", "token": TOKEN}), "tokne", "has no key 'tokne' (keys: 'user', 'token')"),
    (json.dumps({"token": [TOKEN]}), "token", "is list, not text"),
    (TOKEN, "token", "is not a JSON object"),
])
def test_json_secret_mistakes_are_explained_without_the_value(aws: Any, stored: str, key: str | None,
                                                              fragment: str) -> None:
    put_secret(aws, "sh2jira/shape", stored)
    with pytest.raises(TokenSourceError) as info:
        resolve_token({"aws_secret": "sh2jira/shape", "aws_secret_key": key}, session=aws)
    assert fragment in str(info.value)
    assert TOKEN not in str(info.value)


def test_no_region_anywhere(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(TokenSourceError, match="no AWS region; set aws_region"):
        resolve_token({"aws_secret": "sh2jira/jira"}, session=boto3.session.Session())


# -- the token never leaks -------------------------------------------------------------------------------------
def test_token_never_appears_in_errors_or_logs(aws: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Every path, good and bad, with all loggers (botocore's included) at DEBUG."""
    put_secret(aws, "leak/plain", TOKEN)
    put_secret(aws, "leak/json", json.dumps({"token": TOKEN, "other": TOKEN[::-1]}))
    put_secret(aws, "leak/two-lines", f"{TOKEN}\n{TOKEN}")
    two_lines = tmp_path / "two-lines"
    two_lines.write_text(f"{TOKEN}\n{TOKEN}\n")
    good: list[dict[str, Any]] = [{"aws_secret": "leak/plain"}, {"aws_secret": "leak/json", "aws_secret_key": "token"}]
    bad: list[Any] = [
        {"aws_secret": "leak/json"}, {"aws_secret": "leak/json", "aws_secret_key": "missing"},
        {"aws_secret": "leak/plain", "aws_secret_key": "token"}, {"aws_secret": "leak/two-lines"},
        {"file": str(two_lines)}, {"env": "LEAK"}, TOKEN, {"env": TOKEN},
    ]
    caplog.set_level(logging.DEBUG)  # after the set-up, whose create_secret calls botocore logs in full
    caplog.set_level(logging.DEBUG, logger="botocore")  # `sh2jira` CLI tests may have quietened it
    for source in good:
        assert resolve_token(source, session=aws, environ={}) == TOKEN
    messages = []
    for source in bad:
        with pytest.raises((TokenSourceError, ValidationError)) as info:
            resolve_token(source, session=aws, environ={"LEAK": f"{TOKEN} "})
        messages.append(f"{info.value!s} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}")
    assert len(messages) == len(bad)
    assert any("Response body" in r.getMessage() for r in caplog.records)  # botocore did log the bodies
    logged = "\n".join(r.getMessage() for r in caplog.records)
    out = capsys.readouterr()
    for text in (*messages, logged, caplog.text, out.out, out.err):
        assert TOKEN not in text and TOKEN.encode().hex() not in text
