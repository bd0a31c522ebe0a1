"""The performance bench in miniature (CI): 300 generated findings through `sh2jira run --once` as a subprocess,
Security Hub throttling on at the real quotas, Jira rate limited. Asserts what the bench's figures rest on —
one issue per ticketed finding, no duplicates, link-backs written, calls counted — never a time.
The full bench is `python -m bench perf` (bench/README.md, bench/RESULTS.md)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bench import perf, perf_whatif
from bench.findings import REGIONS, generate
from sh2jira import wiki
from sh2jira.finding import Finding

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_generated_findings_look_like_a_real_estate_and_are_deterministic() -> None:
    docs = list(generate(400, now=NOW))
    assert docs == list(generate(400, now=NOW))
    parsed = [Finding.parse(d) for d in docs]
    assert len({f.key for f in parsed}) == 400
    assert len({f.product_name for f in parsed}) >= 5
    assert len({f.account_id for f in parsed}) >= 5
    assert {f.region for f in parsed} == set(REGIONS)
    assert set(Counter(f.severity_label for f in parsed)) == {"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"}
    assert all(NOW - timedelta(days=21) < datetime.fromisoformat(f.updated_at) < NOW for f in parsed)


@pytest.mark.parametrize(("flavour", "link_back", "throttling"), [("cloud", "status-only", True),
                                                                  ("datacenter", "full", False)])
def test_a_small_backfill_tickets_every_finding_once(flavour: str, link_back: str, throttling: bool) -> None:
    n = 300 if link_back == "status-only" else 90  # full mode: one BatchUpdateFindings per finding
    result = perf.run(perf.Options(findings=n, link_back=link_back, flavour=flavour, throttling=throttling,
                                   jira_rate=50.0, jira_burst=50.0, jira_latency=0.0, timeout=120.0))
    b = result["backfill"]
    assert b["exit"] == 0, b["log"]
    assert b["expected_issues"] > 0.9 * n
    assert b["issues"] == b["distinct_findings"] == b["expected_issues"]
    assert b["duplicates"] == 0 and b["missing"] == 0
    assert b["linkbacks_present"] == b["expected_issues"]
    assert b["sh"]["GetFindings"] >= len(REGIONS)
    linkback_calls = b["sh"]["BatchUpdateFindings"]
    assert linkback_calls == (b["expected_issues"] if link_back == "full" else pytest.approx(len(REGIONS), abs=3))
    assert b["jira"]["by_route"].get("POST /rest/api/{v}/issue/bulk", 0) >= b["expected_issues"] / 50
    assert b["per_finding"]["jira_writes_per_new"] <= 0.06  # bulk creates of 50 (plus a page's remainder)
    if n >= 300:  # start-up and the closure search are fixed costs: too heavy a share of 90 findings
        assert b["per_finding"]["jira_calls_per_new"] <= 0.06
    assert b["rss_mb"] > 0 and b["ledger"]["entries"] == b["expected_issues"]
    for name in ("next_cycle", "idle"):
        idle = result[name]
        assert idle["exit"] == 0
        assert "created=0" in idle["report"] and "updated=0" in idle["report"]
        assert all(1 <= pages <= 2 for pages in idle["get_findings_per_region"].values())
        assert idle["jira"]["writes"] == 0
    assert result["idle"]["jira"]["searches"] == 1


def test_whatif_wiki_escapes_exactly_as_sh2jira_does(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("jira_len", "clean", "escape", "_joiner_positions")
    originals = {name: getattr(wiki, name) for name in names}
    for name in names:
        monkeypatch.setattr(wiki, name, originals[name])  # restored after the test
    perf_whatif.apply(["wiki"])
    rng = random.Random(11)
    soup = list("ab:/\\!#%()*+-?@[]^_{|}~&;PpDd \n\r\t\x00\x0b\x85\u2028\u2060\u200b\u202e\ud800\U0001f600\u0301\u200d")
    soup += ["www.", "://", "&amp;", "h3.", "\r\n", ":P", "javascript:", "mailto:", " bq."]
    samples = ["".join(rng.choice(soup) for _ in range(rng.randrange(40))) for _ in range(4000)]
    samples += [str(v) for d in generate(100, now=NOW) for v in (d["Title"], d["Description"], d["Id"])]
    for text in samples:
        for name in ("jira_len", "clean", "escape"):
            assert getattr(wiki, name)(text) == originals[name](text), (name, text)


def test_the_accounts_setup_reads_every_account_and_region_as_a_scope_of_its_own() -> None:
    """`--accounts`: member accounts through AssumeRole; every account+region is read and written as its own scope,
    link-backs in full batches per scope but the last, and an idle cycle costs one GetFindings per scope."""
    n, accounts = 400, 2
    result = perf.run(perf.Options(findings=n, link_back="status-only", jira_rate=50.0, jira_burst=50.0,
                                   jira_latency=0.0, timeout=120.0, accounts=accounts))
    b = result["backfill"]
    assert b["exit"] == 0, b["log"]
    assert b["issues"] == b["distinct_findings"] == b["expected_issues"] > 0.9 * n
    assert b["duplicates"] == 0 and b["missing"] == 0 and b["linkbacks_present"] == b["expected_issues"]
    assert b["time"]["scopes"] == accounts * len(REGIONS)
    # one call per 100 findings of a scope, rounded up (each scope's last batch is the only partial one)
    assert b["sh"]["BatchUpdateFindings"] <= b["expected_issues"] / 100 + accounts * len(REGIONS)
    for name in ("next_cycle", "idle"):
        assert result[name]["get_findings_per_scope"] == [(1, accounts * len(REGIONS))]
