"""Several scopes (accounts × regions) read side by side, end to end with real boto3 and jira clients: every scope
read and synced, each scope's cursor its own after a stop in the middle, the idle cycle's single GetFindings per
scope (the console-closure query every `closure.securityhub_check_minutes`), and full link-back batches per
scope. Accounts are reached through STS over HTTP (test_accounts.py's `org`)."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from sh2jira.config import Config
from sh2jira.finding import FindingKey
from sh2jira.sandbox import launch
from sh2jira.sandbox.jira_app import JiraApp
from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.server import serve
from sh2jira.sandbox.sh_model import match_route
from sh2jira.securityhub import parse_iso
from tests.e2e.test_accounts import (  # noqa: F401
    ACCOUNT_A,
    ACCOUNT_B,
    TABLE,
    HttpSts,
    MotoKeys,
    config_with,
    linked,
    org,
    org_yaml,
    placed,
    spread,
)
from tests.e2e.world import NOW, World, fresh

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


def org_config(world: World, *, check_minutes: int = 0, link_back: str = "full") -> Config:
    cfg = config_with(world, org_yaml(ACCOUNT_A, ACCOUNT_B), ", ".join(REGIONS))
    hub = cfg.securityhub.model_copy(update={"link_back": link_back})
    closure = cfg.closure.model_copy(update={"securityhub_check_minutes": check_minutes})
    return cfg.model_copy(update={"securityhub": hub, "closure": closure})


def layout(per_scope: dict[tuple[str, str], int]) -> dict[tuple[str, str], list[int]]:
    out, n = {}, 0
    for scope, count in per_scope.items():
        out[scope] = list(range(n, n + count))
        n += count
    return out


class Batches:
    """WSGI layer in front of the Security Hub stand-in: the size of each BatchUpdateFindings, per account/region
    (the findings' account, the request's credential scope), in the order they arrive. It only watches."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.sizes: dict[tuple[str, str], list[int]] = defaultdict(list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        found = match_route(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        if found and found[0] == "BatchUpdateFindings":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            auth = environ.get("HTTP_AUTHORIZATION", "")
            region = auth.split("Credential=", 1)[1].split("/")[2]
            ids = json.loads(body).get("FindingIdentifiers", [])
            self.sizes[(ids[0]["Id"].split(":")[4], region)].append(len(ids))
        return self.app(environ, start_response)


@pytest.fixture
def watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, Batches]]:
    """test_accounts.py's `org`, with the link-back calls watched on their way to the stand-in."""
    sh_app = SecurityHubApp(access_keys=TABLE)
    batches = Batches(MotoKeys(sh_app))
    jira_app = JiraApp("cloud")
    box = launch.Sandbox(serve(batches), sh_app, serve(jira_app), jira_app)
    sts_server = serve(HttpSts())
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts_server.url)
    with mock_aws():
        yield World(box, tmp_path, "cloud"), batches
    sts_server.stop()
    box.stop()


def cursor(syncer: Any, account: str, region: str) -> Any:
    return parse_iso(syncer.ledger.cursor(f"findings:{account}/{region}") or "")


def test_every_scope_is_read_and_synced_side_by_side(org: tuple[World, HttpSts]) -> None:
    world, _ = org
    docs = spread(world, layout({(a, r): 3 for a in (ACCOUNT_A, ACCOUNT_B) for r in REGIONS}))
    syncer = world.syncer(org_config(world))
    report = syncer.run_cycle()
    assert (report.created, report.linkbacks, report.scope_errors) == (18, 18, [])
    for (account, region), mine in docs.items():
        assert all(linked(world, d) for d in mine)
        newest = parse_iso(max(d["UpdatedAt"] for d in mine))
        assert cursor(syncer, account, region) == newest  # each scope's cursor is its own newest change
        for d in mine:  # each entry remembers the scope it was read through (its link-back goes back there)
            digest = FindingKey(d["ProductArn"], d["Id"]).digest
            assert syncer.ledger.get([digest])[digest].region == f"{account}/{region}"
    assert world.cycle(org_config(world)).created == 0


def test_a_stop_in_the_middle_leaves_each_scope_cursor_behind_its_unwritten_pages(
        org: tuple[World, HttpSts]) -> None:
    """A graceful stop after a few pages (what SIGTERM or a lost lease does): no scope's cursor is ahead of what
    the ledger holds for it, and the next cycle finishes every scope with exactly one issue per finding."""
    world, _ = org
    docs = spread(world, layout({(a, r): 7 for a in (ACCOUNT_A, ACCOUNT_B) for r in REGIONS}))
    cfg = org_config(world)
    cfg = cfg.model_copy(update={"securityhub": cfg.securityhub.model_copy(update={"page_size": 3})})
    syncer = world.syncer(cfg)
    pages = [0]

    def progress(report: Any, scope: str) -> None:
        pages[0] += 1

    syncer.progress = progress
    syncer.should_stop = lambda: pages[0] >= 5
    report = syncer.run_cycle()
    assert report.stopped and 0 < report.created < 42
    for (account, region), mine in docs.items():
        written = {d["Id"] for d in mine if syncer.ledger.get([FindingKey(d["ProductArn"], d["Id"]).digest])}
        at = cursor(syncer, account, region)
        if at is None:
            continue
        # every finding of the scope up to its cursor is in the ledger: a restart re-reads, never skips
        assert all(d["Id"] in written for d in mine if parse_iso(d["UpdatedAt"]) <= at), (account, region)
    assert world.cycle(cfg).created == 42 - report.created
    for mine in docs.values():
        for d in mine:
            world.issue_for(d["Id"], d["ProductArn"])  # exactly one issue each


def test_the_idle_cycle_reads_one_page_per_scope_and_the_console_check_runs_again_after_its_interval(
        org: tuple[World, HttpSts]) -> None:
    world, _ = org
    places = layout({(a, r): 1 for a in (ACCOUNT_A, ACCOUNT_B) for r in REGIONS})
    places[(ACCOUNT_B, "eu-west-1")] = [80, 110]  # a newer change moves the cursor beyond the overlap of the first
    docs = spread(world, places)
    cfg = org_config(world, check_minutes=15)
    assert world.syncer(cfg).run_cycle().created == 7
    app = world.sandbox.securityhub_app
    scopes = 2 * len(REGIONS)

    app.calls.reset()
    world.now += timedelta(minutes=5)
    assert world.syncer(cfg).run_cycle().created == 0  # a new syncer: the interval is kept in the ledger
    assert app.calls.count("GetFindings") == scopes
    assert all(app.calls.count("GetFindings", r) == 2 for r in REGIONS)

    # someone resolves a finding in the console: seen once the interval has run out, not before
    doc = docs[(ACCOUNT_B, "eu-west-1")][0]
    client = world.syncer(cfg).hub
    assert client.update(f"{ACCOUNT_B}/eu-west-1", [{"Id": doc["Id"], "ProductArn": doc["ProductArn"]}],
                         {"Workflow": {"Status": "RESOLVED"}}) == []
    app.calls.reset()
    world.now += timedelta(minutes=5)
    assert world.syncer(cfg).run_cycle().resolved == 0
    assert app.calls.count("GetFindings") == scopes
    app.calls.reset()
    world.now += timedelta(minutes=6)  # 16 minutes since the last check
    report = world.syncer(cfg).run_cycle()
    assert report.resolved == 1 and app.calls.count("GetFindings") == 2 * scopes
    app.calls.reset()
    assert world.syncer(cfg).run_cycle().resolved == 0 and app.calls.count("GetFindings") == scopes


def test_an_interval_of_zero_checks_every_cycle(org: tuple[World, HttpSts]) -> None:
    world, _ = org
    spread(world, layout({(ACCOUNT_A, "us-east-1"): 1}))
    cfg = org_config(world, check_minutes=0)
    world.syncer(cfg).run_cycle()
    app = world.sandbox.securityhub_app
    app.calls.reset()
    world.syncer(cfg).run_cycle()
    assert app.calls.count("GetFindings") == 2 * 2 * len(REGIONS)


def test_status_only_link_backs_go_out_in_full_batches_per_scope_but_the_last(
        watched: tuple[World, Batches]) -> None:
    world, batches = watched
    counts = {(ACCOUNT_A, "us-east-1"): 250, (ACCOUNT_A, "eu-west-1"): 130, (ACCOUNT_B, "us-east-1"): 100,
              (ACCOUNT_B, "ap-southeast-2"): 40}
    for (account, region), ns in layout(counts).items():  # one second apart: all inside the first window
        docs = [fresh(placed(n, account, region), NOW - timedelta(hours=2) + timedelta(seconds=n)) for n in ns]
        assert world.sandbox.securityhub_app.load(docs, account=account, region=region)["SuccessCount"] == len(ns)
    report = world.syncer(org_config(world, link_back="status-only")).run_cycle()
    assert report.created == report.linkbacks == sum(counts.values())
    assert set(batches.sizes) == set(counts)
    for scope, n in counts.items():
        sizes = batches.sizes[scope]
        assert sum(sizes) == n and len(sizes) == -(-n // 100), (scope, sizes)  # ceil(n / 100) calls
        assert all(b == 100 for b in sizes[:-1]), (scope, sizes)  # every batch full but the last
