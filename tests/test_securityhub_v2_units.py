"""The V2 adapter's pure parts and the one-source-per-finding router, without servers: ASFF filters and values
translated to GetFindingsV2 / BatchUpdateFindingsV2, and which copy of a finding drives its issue."""

from __future__ import annotations

from typing import Any

import pytest

from sh2jira import securityhub_v2
from sh2jira.ledger import OPEN, Entry
from sh2jira.ledgers.sqlite import SqliteLedger
from sh2jira.linkback import closed_values, full_values
from sh2jira.ocsf import raw_key
from sh2jira.plan import closure_write, reopen_write
from sh2jira.securityhub_v2 import base_scope, is_v2_scope, translate_filters, translate_values, v2_scope
from sh2jira.sources import RoutedHub
from tests.fixtures.ocsf import ocsf_finding
from tests.fixtures.securityhub import securityhub_factory, securityhub_sandbox  # noqa: F401


def test_scopes() -> None:
    assert v2_scope("us-east-1") == "v2:us-east-1" == v2_scope("v2:us-east-1")
    assert base_scope("v2:111122223333/eu-west-1") == "111122223333/eu-west-1"
    assert is_v2_scope("v2:us-east-1") and not is_v2_scope("us-east-1")


def test_changes_window_and_coarse_filters() -> None:
    out = translate_filters({
        "ProductName": [{"Value": "GuardDuty", "Comparison": "EQUALS"}, {"Value": "Inspector", "Comparison": "EQUALS"}],
        "AwsAccountId": [{"Value": "111122223333", "Comparison": "EQUALS"}],
        "UpdatedAt": [{"Start": "2026-11-28T09:00:00.000Z", "End": "2026-11-28T12:00:00.000Z"}]})
    assert out["CompositeOperator"] == "AND"
    composites = out["CompositeFilters"]
    assert {"Operator": "OR", "StringFilters": [
        {"FieldName": "metadata.product.name", "Filter": {"Value": "GuardDuty", "Comparison": "EQUALS"}},
        {"FieldName": "metadata.product.name", "Filter": {"Value": "Inspector", "Comparison": "EQUALS"}}]} \
        in composites
    assert {"DateFilters": [{"FieldName": "finding_info.modified_time_dt", "Filter": {
        "Start": "2026-11-28T09:00:00.000Z", "End": "2026-11-28T12:00:00.000Z"}}]} in composites
    assert len(composites) == 3


def test_record_state_and_unknown_attributes() -> None:
    active = translate_filters({"RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}]})
    assert active["CompositeFilters"][0]["StringFilters"][0] == {
        "FieldName": "activity_name", "Filter": {"Value": "Close", "Comparison": "NOT_EQUALS"}}
    assert translate_filters({}) == {}
    with pytest.raises(ValueError, match="WorkflowStatus has no GetFindingsV2 translation"):
        translate_filters({"WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"}]})


ENTRY = Entry(key="k", product_arn="arn:aws:securityhub:us-east-1::product/aws/securityhub", finding_id="f",
              state=OPEN, issue_key="SEC-7")


def test_link_back_values() -> None:
    values = translate_values(full_values("SEC-7", "https://jira.example/browse/SEC-7"), 2)
    assert values == {"StatusId": 2, "Comment": "Tracked in Jira as SEC-7: https://jira.example/browse/SEC-7"}
    assert translate_values(full_values("SEC-7", "https://j/" + "x" * 600), 99)["StatusId"] == 99
    assert len(translate_values(full_values("SEC-7", "https://j/" + "x" * 600), 2)["Comment"]) == 512
    assert translate_values(closed_values(), 2) == {}  # V2 has nowhere to keep the "closed" mark: no call


@pytest.mark.parametrize(("resolution", "status"), [("Done", 4), ("Won't Fix", 3)])
def test_jira_side_values(resolution: str, status: int) -> None:
    write = closure_write(ENTRY, resolution, {"Won't Fix"}, "Ann")
    assert translate_values(write.values, 2) == {
        "StatusId": status, "Comment": f"Jira issue SEC-7 was resolved ({resolution}) by Ann."}
    assert translate_values(reopen_write(ENTRY, "").values, 2) == {
        "StatusId": 2, "Comment": "Jira issue SEC-7 was reopened."}


class _Hub:
    page_size = 100
    calls: dict[str, int] = {}

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self._pages = pages

    def pages(self, scope: str, filters: Any, sort_field: str = "", sort_order: str = "") -> Any:
        yield from self._pages


def test_one_source_of_record_per_finding(tmp_path: Any) -> None:
    ledger = SqliteLedger(str(tmp_path / "l.sqlite3"))
    doc = ocsf_finding(1)
    key = raw_key(doc)
    assert key is not None
    ledger.put([Entry(key=key.digest, product_arn=key.product_arn, finding_id=key.id, state=OPEN,
                      region="us-east-1", issue_key="SEC-1")])
    other = ocsf_finding(2)
    both = RoutedHub(_Hub([]), _Hub([[doc, other]]), ledger, ["us-east-1", "v2:us-east-1"])  # type: ignore[arg-type]
    assert list(both.pages("v2:us-east-1", {})) == [[other]] and both.left_out == 1
    only_v2 = RoutedHub(_Hub([]), _Hub([[doc, other]]), ledger, ["v2:us-east-1"])  # type: ignore[arg-type]
    assert list(only_v2.pages("v2:us-east-1", {})) == [[doc, other]]
    assert ledger.get([key.digest])[key.digest].region == "v2:us-east-1"  # taken over


def test_identifiers_and_the_open_issue_check_stay_bounded(securityhub_sandbox: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory does not grow with the number of V2 findings: only the latest IDENTS_KEPT identifiers are kept (an
    older finding's link-back looks it up again), and the open issues' findings are read CHECK_CHUNK at a time."""
    monkeypatch.setattr(securityhub_v2, "IDENTS_KEPT", 5)
    monkeypatch.setattr(securityhub_v2, "CHECK_CHUNK", 4)
    docs = [ocsf_finding(n, account="123456789012") for n in range(12)]  # the sandbox client's own account
    securityhub_sandbox.app.v2.load(docs)
    client = securityhub_sandbox.client()
    gone = [("gone-1", docs[0]["metadata"]["product"]["uid"].replace(":productv2/", ":product/"))]
    keys = [(k.id, k.product_arn) for k in (raw_key(d) for d in docs) if k is not None]
    hub = securityhub_v2.SecurityHubV2(lambda scope: client, tracked=lambda scope: keys + gone)
    assert sum(len(page) for page in hub.pages("v2:us-east-1", {})) == 12
    assert len(hub._idents) == 5
    unprocessed = hub.update("v2:us-east-1", [{"Id": fid, "ProductArn": arn} for fid, arn in keys],
                             {"Workflow": {"Status": "NOTIFIED"}})
    assert unprocessed == [] and len(hub._idents) == 5
    assert [d["status_id"] for d in securityhub_sandbox.app.v2.findings()] == [2] * 12  # all 12 written
    checked = [doc for page in hub.check_tracked("v2:us-east-1") for doc in page]
    assert [doc["finding_info"]["uid"] for doc in checked] == ["gone-1"]  # the tombstone of the one not found
