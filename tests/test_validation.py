"""`validate` refuses what would silently do the wrong thing, naming file, line and key path: globs that cannot
match as written, the token given twice, a token pasted where a variable name belongs (never echoed), and an
account id YAML turned into an octal number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sh2jira.cli import main
from sh2jira.config import ConfigError, config_json_schema, load_config
from sh2jira.matchers import glob_problem

HEAD = """\
securityhub:
  regions: [us-east-1]
jira:
  url: https://example.atlassian.net
  user: bot@example.com
"""


def _problems(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config("c.yaml")
    return str(caught.value).splitlines()


def _schema_rejects(text: str) -> bool:
    validator = jsonschema.Draft202012Validator(config_json_schema())
    return any(True for _ in validator.iter_errors(yaml.safe_load(text)))


# --- globs ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "problem"), [
    ("S3.[*", "has a '[' that is never closed"),
    ("[z-a]", "matches nothing"),
    ("acct-[", "has a '[' that is never closed"),
])
def test_glob_problem_names_what_is_wrong(pattern: str, problem: str) -> None:
    found = glob_problem(pattern)
    assert found is not None and problem in found and repr(pattern) in found


@pytest.mark.parametrize("pattern", ["S3.*", "S3.[0-9]*", "[[]literal", "[!a]x", "a[]]b", "*.IAM.*", "?"])
def test_good_globs_pass(pattern: str) -> None:
    assert glob_problem(pattern) is None


@pytest.mark.parametrize("match", [
    "control_id: ['S3.[*']", "product: ['Guard[Duty']", "account: ['4444[']", "region: ['eu-[']",
    "resource_type: ['AwsS3[']", "resource_tags: {env: 'pr[od'}",
])
def test_a_broken_glob_in_any_condition_is_refused_with_line_and_key(match: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    text = HEAD + f"rulebook:\n  defaults: {{project: SEC}}\n  rules:\n    - name: r\n      match: {{{match}}}\n"
    (problem,) = _problems(tmp_path, text, monkeypatch)
    key = match.split(":")[0]
    assert problem.startswith(f"c.yaml:10: rulebook.rules[0].match.{key}")
    assert "never closed" in problem
    assert _schema_rejects(text)


# --- the token --------------------------------------------------------------------------------------------------

def test_the_token_given_twice_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (HEAD + "  token_env: SH2JIRA_JIRA_TOKEN\n  token: {file: /run/secrets/token}\n"
            "rulebook: {defaults: {project: SEC}}\n")
    assert _problems(tmp_path, text, monkeypatch) == [
        "c.yaml:7: jira.token: the token's source is given twice, here and in jira.token_env: keep one "
        "(token_env: NAME is the same as token: {env: NAME})"]
    assert _schema_rejects(text)
    alone = text.replace("  token_env: SH2JIRA_JIRA_TOKEN\n", "")
    (tmp_path / "ok.yaml").write_text(alone)
    assert load_config(tmp_path / "ok.yaml").jira.token is not None


@pytest.mark.parametrize("pasted", [
    "ATATT3xFfGF0T4kExample-Token=",  # Jira Cloud API token shape
    "NDc4MDM1Nzg2ODk5OkAbCdEfGhIjKlMnOp",  # Data Center PAT shape: letters and digits only
    "ghp_abcdef0123456789",
])
@pytest.mark.parametrize("where", ["token_env: {v}", "token: {{env: {v}}}"])
def test_a_pasted_token_is_refused_and_never_echoed(pasted: str, where: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    text = HEAD + f"  {where.format(v=pasted)}\nrulebook: {{defaults: {{project: SEC}}}}\n"
    (problem,) = _problems(tmp_path, text, monkeypatch)
    key = "jira.token_env" if where.startswith("token_env") else "jira.token.env"
    assert problem.startswith(f"c.yaml:6: {key}: is not an environment variable name")
    assert pasted not in problem
    assert main(["validate", "-c", "c.yaml"]) == 2
    captured = capsys.readouterr()
    assert pasted not in captured.out + captured.err and f"c.yaml:6: {key}:" in captured.err
    assert _schema_rejects(text)


@pytest.mark.parametrize("name", ["SH2JIRA_JIRA_TOKEN", "JIRA_PAT", "_X", "A1"])
def test_real_variable_names_pass(name: str, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(HEAD + f"  token_env: {name}\nrulebook: {{defaults: {{project: SEC}}}}\n")
    assert load_config(tmp_path / "c.yaml").jira.token_env == name


# --- YAML's octal account ids ----------------------------------------------------------------------------------

def test_an_unquoted_account_id_with_a_leading_zero_is_shown_as_written(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    text = (HEAD.replace("  regions: [us-east-1]\n", "  regions: [us-east-1]\n  accounts:\n"
                         "    - {account_id: 011122223333, role_name: Reader}\n")
            + "rulebook:\n  defaults: {project: SEC}\n  filters:\n    account: [011122223333, 222233334444]\n")
    problems = _problems(tmp_path, text, monkeypatch)
    assert problems == [
        "c.yaml:4: securityhub.accounts[0].account_id: must be text, but YAML reads the unquoted 011122223333 as "
        "the number 1229530843 (a leading 0 makes it octal); quote it: '011122223333'",
        "c.yaml:11: rulebook.filters.account[0]: must be text, but YAML reads the unquoted 011122223333 as the "
        "number 1229530843 (a leading 0 makes it octal); quote it: '011122223333'",
        "c.yaml:11: rulebook.filters.account[1]: must be text, got a number; quote it: '222233334444'",
    ]
    assert "'1229530843'" not in "\n".join(problems)


def test_validate_on_the_command_line_names_file_line_and_key_for_each(tmp_path: Path, capsys: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(
        HEAD + "  token_env: SH2JIRA_JIRA_TOKEN\n  token: {file: /t}\nrulebook:\n  defaults: {project: SEC}\n"
        "  filters: {account: [011122223333]}\n  rules:\n    - {name: r, match: {control_id: ['S3.[*']}}\n")
    assert main(["validate", "-c", "c.yaml"]) == 2
    err = capsys.readouterr().err
    assert "c.yaml:7: jira.token:" in err
    assert "c.yaml:10: rulebook.filters.account[0]:" in err and "quote it: '011122223333'" in err
    assert "c.yaml:12: rulebook.rules[0].match.control_id[0]: glob 'S3.[*'" in err
