"""Many accounts (assume-role) and cross-region aggregation, end to end with real boto3 and jira clients.

Accounts: moto's STS hands out the assumed-role credentials, in process (mock_aws) or, for the scope isolation
tests, over HTTP (HttpSts: moto's own STS request handler behind werkzeug, since flask, which moto's threaded
server needs, is not installed), while Security Hub stays our HTTP stand-in. The stand-in tells accounts
apart by access key: a small WSGI layer in front of it swaps each key moto issued for the stand-in's table key
of the account moto issued it in (moto.iam.models.get_account_id_from), so a request signed with the wrong
account's credentials is answered as that account, and it sees none of the other account's findings.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from dateutil.tz import tzlocal
from moto import mock_aws
from moto.core.request import Request as MotoRequest
from moto.iam.models import get_account_id_from
from moto.sts.models import sts_backends
from moto.sts.responses import TokenResponse
from werkzeug.wrappers import Request, Response

from sh2jira import wiki
from sh2jira.app import SetupError
from sh2jira.cli import main
from sh2jira.config import Config, load_config
from sh2jira.finding import Finding, FindingKey
from sh2jira.health import HealthApp
from sh2jira.metrics import Metrics
from sh2jira.sandbox import launch
from sh2jira.sandbox.jira_app import JiraApp
from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.server import serve
from sh2jira.sandbox.sh_scope import Aggregation
from sh2jira.securityhub import AccountRole, NoScopeReadable, assumed_role_session
from tests.e2e.world import NOW, World, finding, fresh, sandbox, world  # noqa: F401

ACCOUNT_A, ACCOUNT_B, ACCOUNT_D = "111111111111", "222222222222", "444444444444"
ROLE = "SecurityHubReader"
EXTERNAL_ID = {ACCOUNT_A: "ext-a-7731", ACCOUNT_B: "ext-b-0042"}
TABLE = {f"standin-key-{a}": a for a in (ACCOUNT_A, ACCOUNT_B, ACCOUNT_D)}
_KEY = re.compile(r"Credential=(ASIA[A-Z0-9]+)/")


class MotoKeys:
    """WSGI layer in front of the Security Hub stand-in: moto-issued access key → the stand-in's key of that
    account. Other keys (the base credentials) pass unchanged, and the stand-in's table refuses them."""

    def __init__(self, app: SecurityHubApp) -> None:
        self.app = app
        self.seen: list[tuple[str, str]] = []  # (moto access key, account)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        found = _KEY.search(auth)
        if found:
            account = get_account_id_from(found.group(1))
            self.seen.append((found.group(1), account))
            environ["HTTP_AUTHORIZATION"] = auth.replace(found.group(1), f"standin-key-{account}")
        return self.app(environ, start_response)


@pytest.fixture
def accounts_world(tmp_path: Path) -> Iterator[tuple[World, MotoKeys]]:
    """Two member accounts, no administrator: each account's credentials see only that account's findings."""
    sh_app = SecurityHubApp(access_keys=TABLE)
    keyed = MotoKeys(sh_app)
    jira_app = JiraApp("cloud")
    box = launch.Sandbox(serve(keyed), sh_app, serve(jira_app), jira_app)
    with mock_aws():
        yield World(box, tmp_path, "cloud"), keyed
    box.stop()


def config_with(world: World, securityhub_keys: str, regions: str) -> Config:
    """The e2e config, with extra `securityhub:` keys (YAML lines, indented two spaces)."""
    path = world.write_config(regions=regions)
    path.write_text(path.read_text().replace("securityhub:\n", "securityhub:\n" + securityhub_keys, 1))
    cfg = load_config(path)
    hub = cfg.securityhub.model_copy(update={"endpoint_url": world.sandbox.securityhub.url})
    return cfg.model_copy(update={"securityhub": hub})


ACCOUNTS_YAML = f"""\
  accounts:
    - {{account_id: "{ACCOUNT_A}", role_name: {ROLE}, external_id: {EXTERNAL_ID[ACCOUNT_A]}}}
    - {{account_id: "{ACCOUNT_B}", role_name: {ROLE}, external_id: {EXTERNAL_ID[ACCOUNT_B]}}}
"""


def placed(n: int, account: str, region: str) -> dict[str, Any]:
    """A ticketable finding of this account, in this region."""
    doc = fresh(finding(n), NOW - timedelta(hours=1))
    doc["Id"] = f"arn:aws:securityhub:{region}:{account}:security-control/S3.8/finding/{n:04d}"
    doc["AwsAccountId"], doc["Region"] = account, region
    doc["Resources"] = [{**doc["Resources"][0], "Region": region}]
    return doc


def ledger_scope(world: World, syncer: Any, doc: dict[str, Any]) -> str:
    digest = FindingKey(doc["ProductArn"], doc["Id"]).digest
    return str(syncer.ledger.get([digest])[digest].region)


def test_two_accounts_through_assumed_roles(accounts_world: tuple[World, MotoKeys]) -> None:
    world, keyed = accounts_world
    app = world.sandbox.securityhub_app
    layout = {(ACCOUNT_A, "us-east-1"): [1, 2], (ACCOUNT_A, "eu-west-1"): [3], (ACCOUNT_B, "us-east-1"): [4, 5]}
    docs = {(acct, region): [placed(n, acct, region) for n in ns] for (acct, region), ns in layout.items()}
    for (acct, region), batch in docs.items():
        assert app.load(batch, account=acct, region=region)["SuccessCount"] == len(batch)

    syncer = world.syncer(config_with(world, ACCOUNTS_YAML, "us-east-1, eu-west-1"))
    assert syncer.opt.regions == [f"{ACCOUNT_A}/us-east-1", f"{ACCOUNT_A}/eu-west-1",
                                  f"{ACCOUNT_B}/us-east-1", f"{ACCOUNT_B}/eu-west-1"]
    report = syncer.run_cycle()

    assert (report.created, report.linkbacks, report.linkback_failures, report.errors) == (5, 5, 0, [])
    for (acct, region), batch in docs.items():
        stored = {f["Id"]: f for f in app.findings(account=acct, region=region)}
        for doc in batch:
            key = world.issue_for(doc["Id"], doc["ProductArn"])["key"]
            got = stored[doc["Id"]]
            assert got["UserDefinedFields"]["sh2jira_issue"] == key  # written with that account's credentials
            assert got["Workflow"]["Status"] == "NOTIFIED"
            assert ledger_scope(world, syncer, doc) == f"{acct}/{region}"
    assert {account for _, account in keyed.seen} == {ACCOUNT_A, ACCOUNT_B}

    for acct in (ACCOUNT_A, ACCOUNT_B):  # one AssumeRole per account, shared by its regions and the link-backs
        roles = sts_backends[acct]["aws"].assumed_roles
        assert [(r.role_arn, r.session_name, r.external_id) for r in roles] == [
            (f"arn:aws:iam::{acct}:role/{ROLE}", "sh2jira", EXTERNAL_ID[acct])]

    # A Jira-side resolution goes back through the account (and region) the finding was read in.
    b_doc = docs[(ACCOUNT_B, "us-east-1")][0]
    key = world.issue_for(b_doc["Id"], b_doc["ProductArn"])["key"]
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done", as_user="alice")
    again = world.syncer(config_with(world, ACCOUNTS_YAML, "us-east-1, eu-west-1")).run_cycle()
    assert (again.from_jira, again.created, again.errors) == (1, 0, [])
    resolved = next(f for f in app.findings(account=ACCOUNT_B) if f["Id"] == b_doc["Id"])
    assert resolved["Workflow"]["Status"] == "RESOLVED" and key in resolved["Note"]["Text"]


def test_a_role_that_cannot_be_assumed_stops_start_up(accounts_world: tuple[World, MotoKeys],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    world, _ = accounts_world
    sts = serve(_sts_denying_everything)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
    try:
        with pytest.raises(SetupError) as caught:
            world.syncer(config_with(world, ACCOUNTS_YAML, "us-east-1"))
    finally:
        sts.stop()
    message = str(caught.value)
    assert f"arn:aws:iam::{ACCOUNT_A}:role/{ROLE}" in message and "external_id" in message
    assert "AccessDenied" in message and EXTERNAL_ID[ACCOUNT_A] not in message
    assert world.issues() == [] and world.sh_calls("GetFindings") == 0


def _sts_denying_everything(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """STS as it answers a caller whose policy (or the role's trust policy) does not allow AssumeRole."""
    body = Request(environ).get_data(as_text=True)
    role = re.search(r"RoleArn=([^&]+)", body)
    return _access_denied(role.group(1) if role else "?")(environ, start_response)


def _access_denied(role: str) -> Response:
    xml = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
           "<Code>AccessDenied</Code><Message>User: arn:aws:sts::999999999999:assumed-role/sh2jira/i-0 is not "
           f"authorized to perform: sts:AssumeRole on resource: {role}</Message>"
           "</Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")
    return Response(xml, status=403, content_type="text/xml")


def test_assumed_role_credentials_are_refreshed_before_they_expire(
        accounts_world: tuple[World, MotoKeys]) -> None:
    world, keyed = accounts_world
    world.sandbox.securityhub_app.load([placed(1, ACCOUNT_A, "us-east-1")], account=ACCOUNT_A, region="us-east-1")
    offset = [timedelta(0)]
    session = assumed_role_session(world.session, AccountRole(ACCOUNT_A, ROLE), "us-east-1",
                                   time_fetcher=lambda: datetime.now(tzlocal()) + offset[0])
    client = session.client("securityhub", region_name="us-east-1", endpoint_url=world.sandbox.securityhub.url)

    assert len(client.get_findings()["Findings"]) == 1
    assert len(client.get_findings()["Findings"]) == 1  # still valid: no second AssumeRole
    offset[0] = timedelta(minutes=50)  # moto's credentials last an hour: 10 minutes left, inside botocore's window
    assert len(client.get_findings()["Findings"]) == 1

    roles = sts_backends[ACCOUNT_A]["aws"].assumed_roles
    assert len(roles) == 2 and roles[0].external_id is None
    keys = [key for key, _ in keyed.seen]
    assert keys[0] == keys[1] == roles[0].access_key_id and keys[2] == roles[1].access_key_id != keys[0]


# -- cross-region aggregation against the sandbox ------------------------------------------------------------
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
AGGREGATION_YAML = "  aggregation: true\n"


def test_aggregation_reads_the_home_region_only_and_links_back_everywhere(world: World) -> None:
    app = world.sandbox.securityhub_app
    app.set_aggregation(Aggregation(home_region="us-east-1"))
    docs = {region: placed(n, "111122223333", region) for n, region in enumerate(REGIONS, 1)}
    for region, doc in docs.items():
        assert world.import_findings([doc], region=region)["FailedFindings"] == []
    world.reset_counts()

    syncer = world.syncer(config_with(world, AGGREGATION_YAML, "us-east-1"))
    assert syncer.opt.regions == ["us-east-1"]
    report = syncer.run_cycle()

    assert (report.created, report.linkbacks, report.linkback_failures) == (3, 3, 0)
    by_region = app.calls.as_dict()["by_region"]
    assert set(by_region) == {"us-east-1"}, by_region  # every call, reads and link-backs, in the home region
    assert by_region["us-east-1"]["ListFindingAggregators"] == 1
    for region, doc in docs.items():
        issue = world.issue_for(doc["Id"], doc["ProductArn"])
        text = issue["description"]
        assert f"?region={region}" in text  # the console link of the finding's own region
        assert [r for r in REGIONS if f"?region={r}" in text] == [region]
        assert f"||Region|{wiki.escape_cell(region)}|" in text
        stored = app.findings(region=region)  # the link-back, replicated to the finding's own region
        assert len(stored) == 1 and stored[0]["UserDefinedFields"]["sh2jira_issue"] == issue["key"]
        assert stored[0]["Note"]["Text"].startswith(f"Tracked in Jira as {issue['key']}")
        assert Finding.parse(stored[0]).region == region
        assert ledger_scope(world, syncer, doc) == "us-east-1"


def test_aggregation_configured_but_off_is_a_clear_start_up_error(world: World) -> None:
    world.import_findings([placed(1, "111122223333", "eu-west-1")], region="eu-west-1")
    with pytest.raises(SetupError) as caught:
        world.syncer(config_with(world, AGGREGATION_YAML, "us-east-1"))
    message = str(caught.value)
    assert "aggregation is true" in message and "no finding aggregator" in message
    assert "create-finding-aggregator --region us-east-1" in message and "aggregation: false" in message
    assert world.sh_calls("GetFindings") == 0 and world.issues() == []


def test_aggregation_with_another_home_region_names_it(world: World) -> None:
    world.sandbox.securityhub_app.set_aggregation(Aggregation(home_region="eu-west-1"))
    with pytest.raises(SetupError, match=r"aggregation region of this account is eu-west-1, not us-east-1: "
                                         r"set securityhub.regions: \[eu-west-1\]"):
        world.syncer(config_with(world, AGGREGATION_YAML, "us-east-1"))
    assert world.sh_calls("GetFindings") == 0


# -- one account or region that fails never stops the others --------------------------------------------------
class HttpSts:
    """STS over HTTP: moto's STS request handler served by werkzeug. AssumeRole into an account in `denied`
    answers 403 AccessDenied, as STS does when the role's trust policy (or the caller's policy) does not allow
    it: the role was removed, or its trust was changed."""

    def __init__(self) -> None:
        self.denied: set[str] = set()
        self.asked: list[str] = []  # role ARNs, in order

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = MotoRequest(environ)
        found = re.search(r"RoleArn=([^&]+)", request.get_data(as_text=True))
        role = unquote(found.group(1)) if found else ""
        self.asked.append(role)
        if role.split(":")[4:5] and role.split(":")[4] in self.denied:
            return _access_denied(role)(environ, start_response)
        status, headers, body = TokenResponse.dispatch(request, request.raw_url, request.headers)
        return Response(body, status=status, headers=dict(headers))(environ, start_response)


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, HttpSts]]:
    """Member accounts reached through STS over HTTP; each account's credentials see only its findings."""
    sh_app = SecurityHubApp(access_keys=TABLE)
    jira_app = JiraApp("cloud")
    box = launch.Sandbox(serve(MotoKeys(sh_app)), sh_app, serve(jira_app), jira_app)
    sts = HttpSts()
    sts_server = serve(sts)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts_server.url)
    with mock_aws():
        yield World(box, tmp_path, "cloud"), sts
    sts_server.stop()
    box.stop()


def org_yaml(*accounts: str) -> str:
    return "  accounts:\n" + "".join(f'    - {{account_id: "{a}", role_name: {ROLE}}}\n' for a in accounts)


def spread(world: World, layout: dict[tuple[str, str], list[int]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Load findings per (account, region); UpdatedAt grows with n, so pages and cursors follow n."""
    docs = {}
    for (acct, region), ns in layout.items():
        docs[(acct, region)] = [fresh(placed(n, acct, region), NOW - timedelta(hours=2) + timedelta(minutes=n))
                                for n in ns]
        assert world.sandbox.securityhub_app.load(docs[(acct, region)], account=acct, region=region)[
            "SuccessCount"] == len(ns)
    return docs


def linked(world: World, doc: dict[str, Any]) -> str | None:
    """The issue key the finding's link-back carries (None: no link-back), checking it names its own issue."""
    stored = next(f for f in world.sandbox.securityhub_app.findings(account=doc["AwsAccountId"])
                  if f["Id"] == doc["Id"])
    key = stored.get("UserDefinedFields", {}).get("sh2jira_issue")
    if key is not None:
        assert key == world.issue_for(doc["Id"], doc["ProductArn"])["key"]
        assert stored["Workflow"]["Status"] == "NOTIFIED"
    return key


def has_issue(world: World, doc: dict[str, Any]) -> bool:
    label = FindingKey(doc["ProductArn"], doc["Id"]).label
    return sum(label in i["labels"] for i in world.issues()) == 1


def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SH2JIRA_TEST_TOKEN", world.sandbox.jira_token())
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECURITYHUB", world.sandbox.securityhub.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", launch.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", launch.SECRET_KEY)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def org_config_file(world: World, accounts_yaml: str, regions: str, name: str = "org.yaml",
                    extra: str = "") -> Path:
    path = world.write_config(regions=regions, name=name)
    path.write_text(path.read_text().replace("securityhub:\n", "securityhub:\n" + accounts_yaml + extra, 1))
    return path


def test_a_denied_account_is_reported_and_skipped_and_converges_once_allowed(
        org: tuple[World, HttpSts], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    world, sts = org
    docs = spread(world, {(ACCOUNT_A, "us-east-1"): [1, 2], (ACCOUNT_D, "us-east-1"): [3, 4],
                          (ACCOUNT_B, "eu-west-1"): [5]})
    sts.denied.add(ACCOUNT_D)  # listed between the two healthy accounts
    yaml_ = org_yaml(ACCOUNT_A, ACCOUNT_D, ACCOUNT_B)
    syncer = world.syncer(config_with(world, yaml_, "us-east-1, eu-west-1"))  # start-up goes on
    report = syncer.run_cycle()

    healthy = docs[(ACCOUNT_A, "us-east-1")] + docs[(ACCOUNT_B, "eu-west-1")]
    assert (report.created, report.linkbacks, report.linkback_failures) == (3, 3, 0)
    assert all(linked(world, d) for d in healthy)
    assert not any(has_issue(world, d) for d in docs[(ACCOUNT_D, "us-east-1")])
    assert report.scope_errors == [(ACCOUNT_D, "us-east-1", "AssumeRole:AccessDenied"),
                                   (ACCOUNT_D, "eu-west-1", "AssumeRole:AccessDenied")]
    assert len(report.errors) == 2
    assert all(f"account {ACCOUNT_D}" in e and f"arn:aws:iam::{ACCOUNT_D}:role/{ROLE}" in e and "AccessDenied" in e
               for e in report.errors)
    assert f"account {ACCOUNT_D}, region us-east-1 cannot be used (AssumeRole:AccessDenied)" in caplog.text

    metrics = Metrics()  # what `run` serves: the gauge and the /healthz body
    metrics.observe_cycle(report, 1.0, True, time.time())
    assert metrics.registry.get_sample_value("sh2jira_scope_errors", {
        "account": ACCOUNT_D, "region": "eu-west-1", "reason": "AssumeRole:AccessDenied"}) == 1
    status, body = HealthApp(metrics, 900).health()
    assert status == 200 and body["scope_errors"] == [
        {"account": ACCOUNT_D, "region": r, "reason": "AssumeRole:AccessDenied"} for r in ("us-east-1", "eu-west-1")]

    # The cron job: ran, but not everywhere → 3; once the role is back → 0 and the account catches up.
    cli_env(world, monkeypatch)
    path = org_config_file(world, yaml_, "us-east-1, eu-west-1")
    assert main(["run", "--once", "-c", str(path)]) == 3
    sts.denied.clear()
    assert main(["run", "--once", "-c", str(path)]) == 0
    assert all(linked(world, d) for d in docs[(ACCOUNT_D, "us-east-1")])
    assert len(world.issues()) == 5  # each finding exactly once
    metrics.observe_cycle(world.syncer(config_with(world, yaml_, "us-east-1, eu-west-1")).run_cycle(), 1.0, True,
                          time.time())
    assert metrics.registry.get_sample_value("sh2jira_scope_errors", {
        "account": ACCOUNT_D, "region": "eu-west-1", "reason": "AssumeRole:AccessDenied"}) == 0
    assert HealthApp(metrics, 900).health()[1]["scope_errors"] == []

    # Only when no account can be read at all, sh2jira could not run: 1.
    sts.denied.update({ACCOUNT_A, ACCOUNT_B, ACCOUNT_D})
    capsys.readouterr()
    assert main(["run", "--once", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert "no Security Hub account or region could be read" in err and ACCOUNT_B in err


def test_no_readable_scope_in_a_cycle_is_a_failed_cycle(org: tuple[World, HttpSts]) -> None:
    """Every scope was fine at start-up and none can be read in the cycle: it raises (exit 1), naming each."""
    world, _ = org
    spread(world, {(ACCOUNT_A, "us-east-1"): [1]})
    syncer = world.syncer(config_with(world, org_yaml(ACCOUNT_A), "us-east-1, eu-west-1"))
    world.sandbox.securityhub_app.set_hub_enabled(False)  # every account, every region
    with pytest.raises(NoScopeReadable) as caught:
        syncer.run_cycle()
    assert [(e.account, e.region, e.reason) for e in caught.value.failures] == [
        (ACCOUNT_A, "us-east-1", "InvalidAccessException"), (ACCOUNT_A, "eu-west-1", "InvalidAccessException")]
    assert caught.value.report.scope_errors == [(e.account, e.region, e.reason) for e in caught.value.failures]
    assert "not subscribed to AWS Security Hub" in str(caught.value) and world.issues() == []


def test_a_region_without_security_hub_waits_with_its_closures_and_catches_up(
        org: tuple[World, HttpSts]) -> None:
    """Security Hub switched off in one account's region: the other scopes are synced, including Jira-side
    resolutions, while that region's resolution and new finding wait; once it is on again, both land."""
    world, _ = org
    app = world.sandbox.securityhub_app
    docs = spread(world, {(ACCOUNT_A, "us-east-1"): [1], (ACCOUNT_A, "eu-west-1"): [2],
                          (ACCOUNT_B, "eu-west-1"): [3]})
    cfg = config_with(world, org_yaml(ACCOUNT_A, ACCOUNT_B), "us-east-1, eu-west-1")
    assert world.syncer(cfg).run_cycle().created == 3

    off = docs[(ACCOUNT_A, "eu-west-1")][0]
    on = docs[(ACCOUNT_B, "eu-west-1")][0]
    for doc in (off, on):  # a person resolves both issues in Jira
        world.sandbox.jira_app.transition_issue(world.issue_for(doc["Id"], doc["ProductArn"])["key"], "Done",
                                                resolution="Done", as_user="alice")
    app.set_hub_enabled(False, account=ACCOUNT_A, region="eu-west-1")
    late = spread(world, {(ACCOUNT_A, "eu-west-1"): [4], (ACCOUNT_B, "us-east-1"): [5]})
    report = world.syncer(cfg).run_cycle()

    def workflow(doc: dict[str, Any]) -> str:
        return str(next(f for f in app.findings(account=doc["AwsAccountId"]) if f["Id"] == doc["Id"])[
            "Workflow"]["Status"])

    assert report.scope_errors == [(ACCOUNT_A, "eu-west-1", "InvalidAccessException")]
    assert any("not subscribed to AWS Security Hub" in e for e in report.errors)
    assert workflow(on) == "RESOLVED" and workflow(off) == "NOTIFIED"  # the other account's closure landed
    assert linked(world, late[(ACCOUNT_B, "us-east-1")][0]) and not has_issue(world, late[(ACCOUNT_A, "eu-west-1")][0])
    assert report.from_jira == 1

    app.set_hub_enabled(True, account=ACCOUNT_A, region="eu-west-1")
    again = world.syncer(cfg).run_cycle()
    assert (again.scope_errors, again.created, again.from_jira) == ([], 1, 1)
    assert workflow(off) == "RESOLVED"  # the waiting Jira-side resolution, written once the region is back
    assert linked(world, late[(ACCOUNT_A, "eu-west-1")][0])
    assert len(world.issues()) == 5


def test_a_scope_failing_mid_run_keeps_its_pages_and_cursor_and_converges(org: tuple[World, HttpSts]) -> None:
    """Page 3 of account A is denied (an SCP change in the middle of the run): the pages before it keep their
    issues and its cursor stays at the last one written; account B is fully synced; the next cycle finishes A
    from that cursor, link-backs included, with no second issue for anything."""
    world, _ = org
    app = world.sandbox.securityhub_app
    docs = spread(world, {(ACCOUNT_A, "us-east-1"): list(range(1, 7)), (ACCOUNT_B, "us-east-1"): [7, 8]})
    path = org_config_file(world, org_yaml(ACCOUNT_A, ACCOUNT_B), "us-east-1", extra="  page_size: 2\n")
    cfg = load_config(path)
    cfg = cfg.model_copy(update={"securityhub": cfg.securityhub.model_copy(
        update={"endpoint_url": world.sandbox.securityhub.url})})
    app.inject_fault("GetFindings", 403, "AccessDeniedException", account=ACCOUNT_A, region="us-east-1", after=2)
    syncer = world.syncer(cfg)
    report = syncer.run_cycle()

    a_docs, b_docs = docs[(ACCOUNT_A, "us-east-1")], docs[(ACCOUNT_B, "us-east-1")]
    assert report.scope_errors == [(ACCOUNT_A, "us-east-1", "AccessDeniedException")]
    assert [has_issue(world, d) for d in a_docs] == [True] * 4 + [False] * 2
    assert all(linked(world, d) for d in b_docs)
    cursor = syncer.ledger.cursor(f"findings:{ACCOUNT_A}/us-east-1")
    assert cursor == a_docs[3]["UpdatedAt"]  # where it got to: the 4th finding, the last of page 2
    pending = syncer.ledger.pending_linkbacks(after="", limit=100)
    assert {e.finding_id for e in pending} <= {d["Id"] for d in a_docs[:4]}  # waiting, not dropped
    assert report.linkback_failures == 0

    again = world.syncer(cfg).run_cycle()
    assert (again.scope_errors, again.created, again.errors) == ([], 2, [])
    assert all(linked(world, d) for d in a_docs + b_docs)
    assert len(world.issues()) == 8
