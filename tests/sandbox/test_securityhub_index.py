"""The Security Hub stand-in's cached query order (sh2jira/sandbox/sh_index.py): the same answers, page for page,
as filtering and sorting every finding for every page (`indexed=False`), through writes between pages; and a large
store paged from one order per query."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from bench.findings import generate
from sh2jira.sandbox import launch
from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.server import serve
from sh2jira.securityhub import changed_since_filters

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _page_ids(client: Any, filters: dict[str, Any], size: int, between: Any = None) -> list[Any]:
    """Every page of a query as (ids, has-next), calling `between(page_number)` after each page."""
    out, token, number = [], None, 0
    while True:
        kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": size,
                                  "SortCriteria": [{"Field": "UpdatedAt", "SortOrder": "asc"}]}
        if token:
            kwargs["NextToken"] = token
        reply = client.get_findings(**kwargs)
        out.append(([f["Id"] for f in reply["Findings"]], [f.get("Workflow") for f in reply["Findings"]],
                     "NextToken" in reply))
        token = reply.get("NextToken")
        number += 1
        if between is not None:
            between(number)
        if not token:
            return out


def _session(app: SecurityHubApp, docs: list[dict[str, Any]]) -> list[Any]:
    """A read-and-write session over HTTP: paging interleaved with link-backs and with severity changes (a field
    the query filters on), then other queries; every page's ids, workflows and whether a next page exists."""
    app.load(docs)
    rng = random.Random(5)
    mine = [d for d in docs if d["Region"] == "eu-west-1"]
    with serve(app) as server:
        client = boto3.client("securityhub", endpoint_url=server.url, region_name="eu-west-1",
                              aws_access_key_id=launch.ACCESS_KEY, aws_secret_access_key=launch.SECRET_KEY)

        def write(page: int) -> None:
            ids = [{"Id": d["Id"], "ProductArn": d["ProductArn"]} for d in rng.sample(mine, 16)]
            client.batch_update_findings(FindingIdentifiers=ids[:8], Workflow={"Status": "NOTIFIED"},
                                         UserDefinedFields={"sh2jira_status": "open"})
            client.batch_update_findings(FindingIdentifiers=ids[8:12], Severity={"Label": "INFORMATIONAL"})
            client.batch_update_findings(FindingIdentifiers=ids[12:], Severity={"Label": "HIGH"})  # some join
            if page == 2:
                client.batch_update_findings(FindingIdentifiers=ids[:3], Workflow={"Status": "RESOLVED"})

        severity = {"SeverityLabel": [{"Value": v, "Comparison": "EQUALS"} for v in ("HIGH", "MEDIUM", "LOW")]}
        changed = changed_since_filters(severity, NOW - timedelta(days=30), NOW)
        workflow = {"UserDefinedFields": [{"Key": "sh2jira_status", "Value": "open", "Comparison": "EQUALS"}],
                    "WorkflowStatus": [{"Value": "RESOLVED", "Comparison": "EQUALS"}]}
        return [_page_ids(client, changed, 23, write), _page_ids(client, changed, 40),
                _page_ids(client, workflow, 5), _page_ids(client, {}, 100)]


KWARGS: dict[str, Any] = {"default_account": launch.ADMIN_ACCOUNT, "now": lambda: NOW,
                          "administrators": {launch.ADMIN_ACCOUNT: ["*"]}}


def test_the_cached_order_answers_page_for_page_as_filtering_everything_does() -> None:
    docs = list(generate(450, now=NOW, seed=3))
    indexed = SecurityHubApp(**KWARGS)
    stock, fast = _session(SecurityHubApp(indexed=False, **KWARGS), docs), _session(indexed, docs)
    assert fast == stock
    assert sum(len(ids) for ids, _, _ in stock[0]) > 100
    assert indexed.index.rebuilds < sum(len(pages) for pages in stock)  # it did answer from its cached order


def test_a_large_store_is_paged_from_one_order_per_query() -> None:
    """30,000 findings (10,000 a region) read as sh2jira reads them, link-backs written between pages: each query's
    order is built once (or again only after a write to a field it reads), not once per page."""
    app = SecurityHubApp(keep_events=False, **KWARGS)
    docs = list(generate(30_000, now=NOW, seed=4))
    app.load(docs)
    assert app.events == [] and app.events_emitted == 30_000
    with serve(app) as server:
        client = boto3.client("securityhub", endpoint_url=server.url, region_name="eu-west-1",
                              aws_access_key_id=launch.ACCESS_KEY, aws_secret_access_key=launch.SECRET_KEY)
        changed = changed_since_filters({}, NOW - timedelta(days=30), NOW)
        written: list[dict[str, str]] = []
        pages = _page_ids(client, changed, 100)
        ids = [i for page_ids, _, _ in pages for i in page_ids]
        assert len(ids) == len(set(ids)) == 10_000  # eu-west-1's own
        assert app.index.rebuilds == 1
        for d in [d for d in docs if d["Region"] == "eu-west-1"][:300:3]:
            written.append({"Id": d["Id"], "ProductArn": d["ProductArn"]})
        for start in range(0, len(written), 100):  # Workflow and UserDefinedFields: not what the query reads
            client.batch_update_findings(FindingIdentifiers=written[start:start + 100],
                                         Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_status": "open"})
        assert [i for page_ids, _, _ in _page_ids(client, changed, 100) for i in page_ids] == ids
        assert app.index.rebuilds == 1
        open_query = {"UserDefinedFields": [{"Key": "sh2jira_status", "Value": "open", "Comparison": "EQUALS"}]}
        assert sum(len(p[0]) for p in _page_ids(client, open_query, 10)) == len(written)
        assert app.index.rebuilds == 2
        more = [{"Id": d["Id"], "ProductArn": d["ProductArn"]} for d in docs if d["Region"] == "eu-west-1"][1:300:3]
        client.batch_update_findings(FindingIdentifiers=more[:50], UserDefinedFields={"sh2jira_status": "open"})
        client.batch_update_findings(FindingIdentifiers=written[:20], UserDefinedFields={"sh2jira_status": "done"})
        reread = [i for p in _page_ids(client, open_query, 10) for i in p[0]]  # joined and left, in place
        assert sorted(reread) == sorted(w["Id"] for w in written[20:] + more[:50])
        assert app.index.rebuilds == 2
