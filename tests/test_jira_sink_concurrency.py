"""Bulk creates sent side by side (jira.max_concurrency): chunks overlap at the Jira stand-in, results keep the
drafts' order, and a chunk's failure is that chunk's alone. Real `jira` client over HTTP; the stand-in's latency
"sleep" is a barrier, so overlap is observed in its in-flight count, not in wall time."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested as parameters)

from __future__ import annotations

import contextlib
import threading

import pytest

from sh2jira.jira_sink import JiraSink, connect
from sh2jira.plan import IssueDraft
from sh2jira.retry import AmbiguousWrite, RetryPolicy
from tests.fixtures.jira import JiraSandbox, jira_pool, jira_sandbox  # noqa: F401

BULK = "POST /rest/api/{v}/issue/bulk"


def sink(box: JiraSandbox, concurrency: int) -> JiraSink:
    policy = RetryPolicy(sleep=box.clock.sleep, now=box.clock, rand=lambda: 0.0)
    creds = box.credentials
    user, token = creds["basic_auth"] if "basic_auth" in creds else (None, creds["token_auth"])
    client = connect(box.url, user=user, token=token, flavour=box.flavour, timeout=10, policy=policy)
    return JiraSink(client, policy=policy, max_concurrency=concurrency)


def drafts(n: int) -> list[IssueDraft]:
    return [IssueDraft("SEC", "Task", f"finding {i:03d}", "d", "High", ("sh2jira", f"sh2jira-{i:03d}"))
            for i in range(n)]


def meet_in_flight(box: JiraSandbox, parties: int) -> None:
    """The stand-in's latency becomes a barrier: each request waits (up to 5 s) until `parties` are in flight.
    Set once the sink is connected (its serverInfo call would wait alone)."""
    barrier = threading.Barrier(parties, timeout=5)

    def wait(_: float) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    box.app.realism.sleeper = wait
    box.app.set_latency(1)


def summaries(box: JiraSandbox) -> dict[str, str]:
    return {i["key"]: i["summary"] for i in box.app.issues()}


def test_chunks_go_out_side_by_side_and_results_keep_their_order(jira_sandbox: JiraSandbox) -> None:
    writer = sink(jira_sandbox, 3)
    meet_in_flight(jira_sandbox, 3)
    results = writer.create_many(drafts(150))
    assert jira_sandbox.app.peak_in_flight()[BULK] == 3  # three chunks of 50 answered at once
    assert jira_sandbox.app.calls[BULK] == 3
    assert [r.index for r in results] == list(range(150))
    by_key = summaries(jira_sandbox)
    assert [by_key[r.key] for r in results] == [f"finding {i:03d}" for i in range(150)]


def test_one_at_a_time_when_max_concurrency_is_1(jira_sandbox: JiraSandbox) -> None:
    results = sink(jira_sandbox, 1).create_many(drafts(120))
    assert jira_sandbox.app.peak_in_flight()[BULK] == 1
    assert [r.key for r in results] == [f"SEC-{n}" for n in range(1, 121)]


@pytest.mark.parametrize("status", [403, 500])
def test_a_failed_chunk_fails_only_its_own_drafts(jira_sandbox: JiraSandbox, status: int) -> None:
    """403: refused (nothing created); 500 on a POST: outcome unknown (AmbiguousWrite, never re-sent)."""
    writer = sink(jira_sandbox, 3)
    meet_in_flight(jira_sandbox, 3)
    jira_sandbox.app.inject_fault("POST", "/issue/bulk", status=status)
    results = writer.create_many(drafts(150))
    failed = [r.index for r in results if r.failure is not None]
    assert len(failed) == 50 and failed == list(range(failed[0], failed[0] + 50)) and failed[0] % 50 == 0
    kinds = {type(r.failure) for r in results if r.failure is not None}
    assert (kinds == {AmbiguousWrite}) == (status == 500)
    by_key = summaries(jira_sandbox)
    assert len(by_key) == 100
    assert all(by_key[r.key] == f"finding {r.index:03d}" for r in results if r.failure is None)


def test_a_refused_token_stops_the_chunks_not_yet_sent(jira_sandbox: JiraSandbox) -> None:
    """401 is not the chunk's fault: the chunks still waiting are not sent, and every draft carries the error (the
    caller records the others' results, then stops the cycle; these intents stay CREATING, checked by label)."""
    writer = sink(jira_sandbox, 1)
    jira_sandbox.app.inject_fault("POST", "/issue/bulk", status=401)
    results = writer.create_many(drafts(150))
    assert jira_sandbox.app.calls[BULK] == 1
    assert {type(r.failure).__name__ for r in results} == {"JiraAuthError"}
    assert jira_sandbox.app.issues() == []
