"""GetFindings paging and sorting through boto3: MaxResults, NextToken binding, stability under change."""

# pytest fixtures are imported by name and then requested as parameters:
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from tests.fixtures.securityhub import (  # noqa: F401  (fixtures are used by name)
    SecurityHubSandbox,
    asff_finding,
    call_raw,
    securityhub_factory,
    securityhub_sandbox,
)

LABELS = ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


@pytest.fixture
def client250(securityhub_sandbox: SecurityHubSandbox) -> Any:
    client = securityhub_sandbox.client()
    findings = [asff_finding(n, Severity={"Label": LABELS[n % 5]}) for n in range(250)]
    for start in range(0, 250, 100):
        assert client.batch_import_findings(Findings=findings[start:start + 100])["FailedCount"] == 0
    return client


def _number(finding: dict[str, Any]) -> int:
    return int(finding["Id"].rsplit("-", 1)[1])


def _error(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "InvalidInputException"
    return str(caught.value.response["Error"]["Message"])


def test_paginator_walks_250_findings_newest_first(client250: Any) -> None:
    pages = list(client250.get_paginator("get_findings").paginate(PaginationConfig={"PageSize": 100}))
    assert [len(p["Findings"]) for p in pages] == [100, 100, 50]
    numbers = [_number(f) for p in pages for f in p["Findings"]]
    assert numbers == list(range(249, -1, -1))  # default order: UpdatedAt descending
    assert "NextToken" not in pages[-1]


def test_max_results_defaults_to_100_and_is_bounded(client250: Any,
                                                    securityhub_sandbox: SecurityHubSandbox) -> None:
    first = client250.get_findings()
    assert len(first["Findings"]) == 100 and first["NextToken"]
    assert "should be <= 100" in _error(lambda: client250.get_findings(MaxResults=101))
    with pytest.raises(ParamValidationError):
        client250.get_findings(MaxResults=0)
    raw = securityhub_sandbox.client(parameter_validation=False)
    assert "should be >= 1" in _error(lambda: call_raw(raw, "GetFindings", {"MaxResults": 0}))


def test_sort_criteria(client250: Any) -> None:
    criteria = [{"Field": "SeverityNormalized", "SortOrder": "desc"}, {"Field": "Title", "SortOrder": "asc"}]
    found = client250.get_findings(SortCriteria=criteria, MaxResults=3)["Findings"]
    assert [f["Severity"]["Label"] for f in found] == ["CRITICAL"] * 3
    assert [f["Title"] for f in found] == [f"Sandbox finding {n}" for n in (104, 109, 114)]
    oldest_first = [{"Field": "UpdatedAt", "SortOrder": "asc"}]
    ascending = client250.get_findings(SortCriteria=oldest_first, MaxResults=2)
    assert [_number(f) for f in ascending["Findings"]] == [0, 1]
    by_path = client250.get_findings(SortCriteria=[{"Field": "Severity.Normalized", "SortOrder": "asc"}],
                                     MaxResults=1)
    assert by_path["Findings"][0]["Severity"]["Label"] == "INFORMATIONAL"


def test_sorting_by_unknown_or_multi_valued_field_is_refused(client250: Any) -> None:
    assert "cannot sort by 'Nope'" in _error(lambda: client250.get_findings(SortCriteria=[{"Field": "Nope"}]))
    assert "cannot sort by 'Type'" in _error(lambda: client250.get_findings(SortCriteria=[{"Field": "Type"}]))


def test_next_token_is_bound_to_its_query(client250: Any) -> None:
    filters = {"SeverityLabel": [{"Value": "LOW", "Comparison": "EQUALS"}]}
    first = client250.get_findings(Filters=filters, MaxResults=10)
    token = first["NextToken"]
    other = {"SeverityLabel": [{"Value": "HIGH", "Comparison": "EQUALS"}]}
    assert "does not belong to this query" in _error(
        lambda: client250.get_findings(Filters=other, NextToken=token))
    assert "does not belong to this query" in _error(lambda: client250.get_findings(NextToken=token))
    sort = [{"Field": "Title", "SortOrder": "asc"}]
    assert "does not belong" in _error(
        lambda: client250.get_findings(Filters=filters, SortCriteria=sort, NextToken=token))
    assert "NextToken is invalid" in _error(lambda: client250.get_findings(NextToken="garbage!"))
    second = client250.get_findings(Filters=filters, MaxResults=25, NextToken=token)
    assert {_number(f) for f in second["Findings"]}.isdisjoint({_number(f) for f in first["Findings"]})


def test_paging_new_findings_while_marking_them_notified_sees_each_once(client250: Any) -> None:
    new = {"WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"}]}
    seen: list[int] = []
    token: str | None = None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = client250.get_findings(Filters=new, MaxResults=40, **kwargs)
        seen += [_number(f) for f in page["Findings"]]
        ids = [{"Id": f["Id"], "ProductArn": f["ProductArn"]} for f in page["Findings"]]
        if ids:
            result = client250.batch_update_findings(FindingIdentifiers=ids, Workflow={"Status": "NOTIFIED"})
            assert not result["UnprocessedFindings"]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == list(range(250))


def test_findings_imported_between_pages_cause_no_duplicates(client250: Any) -> None:
    first = client250.get_findings(MaxResults=100)
    client250.batch_import_findings(Findings=[asff_finding(n) for n in range(1000, 1020)])
    rest = client250.get_paginator("get_findings").paginate(
        PaginationConfig={"PageSize": 100, "StartingToken": first["NextToken"]})
    numbers = [_number(f) for f in first["Findings"]] + [_number(f) for p in rest for f in p["Findings"]]
    assert sorted(numbers) == list(range(250))
