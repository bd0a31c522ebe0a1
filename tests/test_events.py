"""Event mode's pure parts, without servers: what a message must look like, which scope a finding belongs to,
the newest copy of a finding in a batch, the queue's region."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sh2jira.events import MalformedMessage, newest, parse_message, queue_region, scope_of
from sh2jira.finding import Finding
from tests.e2e.world import finding


def event(findings: list[dict[str, Any]], kind: str = "Security Hub Findings - Imported") -> str:
    return json.dumps({"version": "0", "source": "aws.securityhub", "detail-type": kind,
                       "detail": {"findings": findings}})


def test_a_finding_event_gives_its_findings_and_whether_it_is_v2() -> None:
    got = parse_message(event([finding(1), finding(2)]))
    assert not got.v2 and [f["Id"] for f in got.findings] == [finding(1)["Id"], finding(2)["Id"]]
    assert parse_message(event([{"finding_info": {"uid": "x"}}], "Findings Imported V2")).v2


@pytest.mark.parametrize(("body", "says"), [
    ("not json", "not JSON"),
    ("[1, 2]", "JSON list"),
    (json.dumps({"source": "aws.securityhub", "detail-type": "Security Hub Insight Results"}), "detail-type"),
    (json.dumps({"source": "aws.guardduty", "detail-type": "Security Hub Findings - Imported"}), "source"),
    (event([]), "non-empty list"),
    (event(["text"]), "non-empty list"),  # type: ignore[list-item]
])
def test_a_malformed_message_says_what_is_wrong(body: str, says: str) -> None:
    with pytest.raises(MalformedMessage, match=says):
        parse_message(body)


def test_the_scope_is_the_one_the_poller_reads() -> None:
    f = Finding.parse({**finding(1), "Region": "eu-west-1", "AwsAccountId": "444455556666"})
    assert scope_of(f, v2=False, scopes=["us-east-1", "eu-west-1"], aggregation=False, by_account=False) == "eu-west-1"
    assert scope_of(f, v2=False, scopes=["us-east-1"], aggregation=False, by_account=False) is None
    assert scope_of(f, v2=False, scopes=["us-east-1"], aggregation=True, by_account=False) == "us-east-1"
    scopes = ["444455556666/eu-west-1", "v2:444455556666/eu-west-1"]
    assert scope_of(f, v2=False, scopes=scopes, aggregation=False, by_account=True) == "444455556666/eu-west-1"
    assert scope_of(f, v2=True, scopes=scopes, aggregation=False, by_account=True) == "v2:444455556666/eu-west-1"
    assert scope_of(f, v2=True, scopes=["v2:us-east-1"], aggregation=True, by_account=False) == "v2:us-east-1"
    assert scope_of(f, v2=False, scopes=["111122223333/eu-west-1"], aggregation=False, by_account=True) is None


def test_a_batch_keeps_the_newest_copy_of_each_finding() -> None:
    old = Finding.parse({**finding(1), "UpdatedAt": "2026-11-28T10:00:00.000Z", "Title": "old"})
    new = Finding.parse({**finding(1), "UpdatedAt": "2026-11-28T11:00:00.000Z", "Title": "new"})
    other = Finding.parse({**finding(2), "UpdatedAt": "2026-11-28T09:00:00.000Z"})
    kept = newest([new, old, other])
    assert sorted(f.title for f in kept) == ["S3 general purpose buckets should block public access", "new"]


def test_the_queue_region_comes_from_its_url() -> None:
    assert queue_region("https://sqs.eu-west-1.amazonaws.com/111122223333/sh2jira-findings") == "eu-west-1"
    assert queue_region("http://127.0.0.1:5000/123456789012/q") is None
