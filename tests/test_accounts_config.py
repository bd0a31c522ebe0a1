"""`securityhub.accounts`: validation, the scopes the Syncer iterates, and the role each scope assumes."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.sts.models import sts_backends

from sh2jira.app import hub_scopes, sync_options
from sh2jira.config import Config, ConfigError, load_config
from sh2jira.securityhub import AccountRole, ScopedClients, scopes, split_scope

CONFIG = """\
securityhub:
  regions: [us-east-1, eu-west-1]
{accounts}jira:
  url: https://example.atlassian.net
rulebook:
  defaults: {{project: SEC}}
"""


def load_config_with(tmp_path: Path, accounts: str) -> Config:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(accounts=accounts))
    return load_config(path)


def test_accounts_become_account_region_scopes_in_order(tmp_path: Path) -> None:
    cfg = load_config_with(tmp_path, """\
  accounts:
    - {account_id: "222222222222", role_name: ops/SecurityHubReader, external_id: "tenant:42"}
    - {account_id: "111111111111", role_name: SecurityHubReader}
""")
    assert [(a.account_id, a.role_name, a.external_id) for a in cfg.securityhub.accounts] == [
        ("222222222222", "ops/SecurityHubReader", "tenant:42"), ("111111111111", "SecurityHubReader", None)]
    assert hub_scopes(cfg) == sync_options(cfg).regions == [
        "222222222222/us-east-1", "222222222222/eu-west-1", "111111111111/us-east-1", "111111111111/eu-west-1"]


def test_without_accounts_the_scopes_are_the_regions(tmp_path: Path) -> None:
    cfg = load_config_with(tmp_path, "")
    assert cfg.securityhub.accounts == [] and hub_scopes(cfg) == ["us-east-1", "eu-west-1"]


@pytest.mark.parametrize(("entry", "message"), [
    ('{account_id: 111111111111, role_name: R}', "must be text, got a number; quote it: '111111111111'"),
    ('{account_id: "1111", role_name: R}', "'1111' is not a 12-digit AWS account id"),
    ('{account_id: "111111111111"}', "securityhub.accounts[0].role_name: is required"),
    ('{account_id: "111111111111", role_name: R, externalid: x}', "unknown key; did you mean 'external_id'?"),
    ('{account_id: "111111111111", role_name: "' + "R" * 65 + '"}', "is not an IAM role name"),
    ('{account_id: "111111111111", role_name: R, external_id: "x"}', "is not an STS external id"),
])
def test_bad_account_entries_are_named_by_line_and_key(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_with(tmp_path, f"  accounts:\n    - {entry}\n")
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.line == 4 and problem.path.startswith("securityhub.accounts[0]")
    assert message in str(problem)


def test_scope_names_split_back() -> None:
    assert split_scope("us-east-1") == (None, "us-east-1")
    assert split_scope("111111111111/eu-west-1") == ("111111111111", "eu-west-1")
    assert scopes(["us-east-1"], [AccountRole("1" * 12, "R")]) == ["111111111111/us-east-1"]


def test_a_scope_of_an_account_no_longer_configured_falls_back_to_the_default_chain(
        caplog: pytest.LogCaptureFixture) -> None:
    """Ledger entries of a removed account still get their Jira-side updates tried (an administrator's default
    credentials may reach them) instead of failing every cycle."""
    base = boto3.session.Session(aws_access_key_id="AKIDBASE", aws_secret_access_key="b")
    clients = ScopedClients(session=base, accounts=[AccountRole("1" * 12, "R")])
    client = clients("333333333333/eu-west-1")
    assert client.meta.region_name == "eu-west-1"
    assert client._request_signer._credentials.access_key == "AKIDBASE"
    assert "333333333333 is no longer in securityhub.accounts" in caplog.text
    assert clients("us-east-1").meta.region_name == "us-east-1"  # a plain region: the base session


@pytest.mark.parametrize(("region", "partition"), [("eu-west-1", "aws"), ("cn-north-1", "aws-cn"),
                                                   ("us-gov-west-1", "aws-us-gov")])
def test_the_role_arn_is_in_the_regions_partition(region: str, partition: str) -> None:
    with mock_aws():
        base = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b")
        clients = ScopedClients(session=base, accounts=[AccountRole("444455556666", "Reader", "ext-1")])
        clients.assume_role(f"444455556666/{region}")
        roles = sts_backends["444455556666"][partition].assumed_roles
        assert [(r.role_arn, r.session_name, r.external_id) for r in roles] == [
            (f"arn:{partition}:iam::444455556666:role/Reader", "sh2jira", "ext-1")]
