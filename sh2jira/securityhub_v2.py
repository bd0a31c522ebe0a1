"""The new Security Hub as a source: GetFindingsV2 reads and BatchUpdateFindingsV2 link-backs, behind the same
interface as `securityhub.SecurityHub`, so the Syncer, the link-back writer and the retry queue need not know
which Security Hub a scope belongs to.

A V2 scope is the CSPM scope with the prefix `v2:` (`v2:us-east-1`, `v2:111122223333/eu-west-1`): it has its
own cursor (`findings:v2:…`), its own scope isolation (a region where only CSPM is on fails alone) and its own
pacing bucket (GetFindingsV2 is paced at GetFindings' 3 req/s, BatchUpdateFindingsV2 at 10 req/s; AWS
publishes no V2 quota).

What the Syncer asks in ASFF terms is translated here:
- Reads: `UpdatedAt` → `finding_info.modified_time_dt`, `ProductName` → `metadata.product.name`,
  `AwsAccountId` → `cloud.account.uid`, `Region` → `cloud.region`, `Id` → `finding_info.uid`,
  `RecordState ACTIVE` → `activity_name` not Close; values of one attribute OR'ed, attributes AND'ed, pages of
  `page_size` (100) oldest change first. Lookups by id ask 200 ids per call (10 composite filters of 20).
- Link-backs and Jira-side closures: there are no UserDefinedFields and no Note in V2, so `Workflow.Status`
  becomes `StatusId` (NEW 1, NOTIFIED → `link_status`, In Progress 2 by default, RESOLVED 4, SUPPRESSED 3) and
  `Note.Text` the `Comment` (≤ 512 characters: "Tracked in Jira as KEY: URL"). A write that carries only
  UserDefinedFields (the "closed" mark after sh2jira resolved an issue) has nothing to say in V2 and costs no
  call. Writes name findings by `OcsfFindingIdentifier` (finding_info.uid + account + product uid); the
  account comes from the findings read, or from one lookup by id when the finding was not read by this process.
- Findings resolved in the console, and findings that vanished: BatchUpdateFindingsV2 does not move
  `modified_time_dt`, and V2 has no UserDefinedFields to mark sh2jira's findings, so the Syncer's "resolved in
  Security Hub" query (UserDefinedFields sh2jira_status = open) is answered by **reading every open V2 issue's
  finding by id**, each cycle (one GetFindingsV2 page per 100 open issues); those now closed, resolved,
  suppressed or passing are handed to the planner, which resolves their issues. A tracked finding that is no longer
  there was deleted by Security Hub (closed findings are kept 14 days): it comes back as a *tombstone*
  (record state DELETED), and the planner resolves its issue with a comment saying the finding is gone. The
  check runs only on a complete answer, so a failed or throttled read never resolves anything.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .ocsf import asff_product_arn, tombstone_doc, v2_product_uid
from .securityhub import SCOPE_UNAVAILABLE, ScopeUnavailable, SecurityHub, Unprocessed

log = logging.getLogger(__name__)

PREFIX = "v2:"
MAX_IDS_PER_UPDATE = 100  # BatchUpdateFindingsV2
MAX_FILTERS = 20  # per filter type inside one composite filter
MAX_COMPOSITES = 10
IDS_PER_LOOKUP = MAX_FILTERS * MAX_COMPOSITES
# Memory stays flat however many V2 findings there are: the identifiers of the latest findings read are kept for
# their link-backs (an older one is looked up again, 200 per GetFindingsV2), and the check of open issues reads their
# findings a chunk at a time.
IDENTS_KEPT = 50_000
CHECK_CHUNK = 10 * IDS_PER_LOOKUP
LINK_STATUS = {"In Progress": 2, "Other": 99}  # securityhub.v2_link_status → StatusId of a linked finding
WORKFLOW_TO_STATUS = {"NEW": 1, "RESOLVED": 4, "SUPPRESSED": 3}
_FIELDS = {"ProductName": "metadata.product.name", "AwsAccountId": "cloud.account.uid", "Region": "cloud.region",
           "Id": "finding_info.uid"}
Tracked = Callable[[str], Sequence[tuple[str, str]]]  # scope → (finding id, ProductArn) of its open issues


def v2_scope(scope: str) -> str:
    return scope if scope.startswith(PREFIX) else PREFIX + scope


def is_v2_scope(scope: str) -> bool:
    return scope.startswith(PREFIX)


def base_scope(scope: str) -> str:
    """The CSPM scope a V2 scope reads through (same account, region and credentials)."""
    return scope[len(PREFIX):] if scope.startswith(PREFIX) else scope


def translate_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """GetFindings Filters (the subset sh2jira sends) → GetFindingsV2 composite filters."""
    composites: list[dict[str, Any]] = []
    for attribute, conditions in filters.items():
        if attribute == "UpdatedAt":
            for c in conditions:
                span = {k: c[k] for k in ("Start", "End", "DateRange") if k in c}
                composites.append({"DateFilters": [{"FieldName": "finding_info.modified_time_dt", "Filter": span}]})
        elif attribute == "RecordState":
            values = {c["Value"] for c in conditions}
            if values == {"ACTIVE"}:
                composites.append({"StringFilters": [{"FieldName": "activity_name", "Filter": {
                    "Value": "Close", "Comparison": "NOT_EQUALS"}}]})
            elif values == {"ARCHIVED"}:
                composites.append({"StringFilters": [{"FieldName": "activity_name", "Filter": {
                    "Value": "Close", "Comparison": "EQUALS"}}]})
        elif attribute in _FIELDS:
            field = _FIELDS[attribute]
            for i in range(0, len(conditions), MAX_FILTERS):
                chunk = conditions[i: i + MAX_FILTERS]
                composites.append({"Operator": "OR", "StringFilters": [
                    {"FieldName": field, "Filter": {"Value": c["Value"], "Comparison": c.get("Comparison", "EQUALS")}}
                    for c in chunk]})
        else:
            raise ValueError(f"GetFindings filter {attribute} has no GetFindingsV2 translation")
    if len(composites) > MAX_COMPOSITES:
        raise ValueError(f"{len(composites)} composite filters; GetFindingsV2 takes at most {MAX_COMPOSITES}")
    return {"CompositeFilters": composites, "CompositeOperator": "AND"} if composites else {}


def translate_values(values: Mapping[str, Any], link_status: int) -> dict[str, Any]:
    """BatchUpdateFindings values → BatchUpdateFindingsV2 parameters ({} when V2 has nowhere to put them)."""
    out: dict[str, Any] = {}
    status = (values.get("Workflow") or {}).get("Status")
    if status == "NOTIFIED":
        out["StatusId"] = link_status
    elif status in WORKFLOW_TO_STATUS:
        out["StatusId"] = WORKFLOW_TO_STATUS[status]
    text = (values.get("Note") or {}).get("Text")
    if text:
        out["Comment"] = str(text)[:512]
    return out


def _ident_of(doc: Mapping[str, Any]) -> dict[str, str] | None:
    """A V2 finding's FindingIdentifier for BatchUpdateFindingsV2 (None without id, product or account)."""
    fid, arn = _key_of(doc)
    account = str(((doc.get("cloud") or {}).get("account") or {}).get("uid") or "")
    if not (fid and arn and account):
        return None
    return {"CloudAccountUid": account, "FindingInfoUid": fid, "MetadataProductUid": v2_product_uid(arn)}


def _key_of(doc: Mapping[str, Any]) -> tuple[str, str]:
    info, meta = doc.get("finding_info") or {}, doc.get("metadata") or {}
    return str(info.get("uid") or ""), asff_product_arn(str((meta.get("product") or {}).get("uid") or ""))


class SecurityHubV2:
    """GetFindingsV2 / BatchUpdateFindingsV2 per V2 scope, with the interface of SecurityHub."""

    def __init__(self, clients: Callable[[str], Any], page_size: int = 100, *, link_status: int = 2,
                 preflight: Callable[[str], None] | None = None, tracked: Tracked | None = None) -> None:
        self._hub = SecurityHub(lambda scope: clients(base_scope(scope)), page_size=page_size,
                                preflight=(lambda scope: preflight(base_scope(scope))) if preflight else None)
        self.page_size = page_size
        self.link_status = link_status
        self.tracked = tracked
        self._idents: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()  # the latest IDENTS_KEPT
        self._lock = threading.Lock()

    # -- scope isolation: the inner SecurityHub keeps the V2 scopes' own state --------------------------------
    @property
    def calls(self) -> dict[str, int]:
        return self._hub.calls

    def begin_cycle(self) -> None:
        self._hub.begin_cycle()

    @property
    def unavailable(self) -> dict[str, ScopeUnavailable]:
        return self._hub.unavailable

    def ready(self, scope: str) -> None:
        self._hub.ready(v2_scope(scope))

    # -- reads -----------------------------------------------------------------------------------------------
    def pages(self, scope: str, filters: Mapping[str, Any], sort_field: str = "UpdatedAt",
              sort_order: str = "asc") -> Iterator[list[dict[str, Any]]]:
        """GetFindingsV2 pages for these (ASFF) filters. The "resolved in Security Hub" query becomes the check
        of the scope's open issues by id (see the module docstring)."""
        scope = v2_scope(scope)
        if "UserDefinedFields" in filters:
            yield from self.check_tracked(scope)
            return
        field = "finding_info.modified_time_dt" if sort_field == "UpdatedAt" else sort_field
        yield from self._pages(scope, translate_filters(filters), field, sort_order)

    def _pages(self, scope: str, filters: Mapping[str, Any], sort_field: str = "finding_info.modified_time_dt",
               sort_order: str = "asc") -> Iterator[list[dict[str, Any]]]:
        self._hub.ready(scope)
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MaxResults": self.page_size,
                                      "SortCriteria": [{"Field": sort_field, "SortOrder": sort_order}]}
            if filters:
                kwargs["Filters"] = dict(filters)
            if token:
                kwargs["NextToken"] = token
            reply = self._hub._call(scope, "get_findings_v2", **kwargs)
            found = list(reply.get("Findings", []))
            self._remember(found)
            yield found
            token = reply.get("NextToken")
            if not token:
                return

    def _remember(self, docs: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            for doc in docs:
                ident = _ident_of(doc)
                if ident is not None:
                    self._idents[_key_of(doc)] = ident
                    self._idents.move_to_end(_key_of(doc))
            while len(self._idents) > IDENTS_KEPT:
                self._idents.popitem(last=False)

    def by_ids(self, scope: str, identifiers: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """The findings with these (finding id, ProductArn), 200 ids per GetFindingsV2 query."""
        scope = v2_scope(scope)
        wanted = set(identifiers)
        out: list[dict[str, Any]] = []
        ids = sorted({fid for fid, _ in identifiers})
        for i in range(0, len(ids), IDS_PER_LOOKUP):
            chunk = ids[i: i + IDS_PER_LOOKUP]
            composites = [{"Operator": "OR", "StringFilters": [
                {"FieldName": "finding_info.uid", "Filter": {"Value": fid, "Comparison": "EQUALS"}}
                for fid in chunk[j: j + MAX_FILTERS]]} for j in range(0, len(chunk), MAX_FILTERS)]
            for page in self._pages(scope, {"CompositeFilters": composites, "CompositeOperator": "OR"}):
                out.extend(doc for doc in page if _key_of(doc) in wanted)
        return out

    def check_tracked(self, scope: str) -> Iterator[list[dict[str, Any]]]:
        """The current state of every finding whose issue is open, then tombstones for those that are gone."""
        if self.tracked is None:
            return
        every = list(dict.fromkeys(self.tracked(scope)))
        account, region = _split(base_scope(scope))
        for start in range(0, len(every), CHECK_CHUNK):  # a chunk's findings at a time, not all of them in memory
            wanted = every[start: start + CHECK_CHUNK]
            found = self.by_ids(scope, wanted)  # raises on any failure: nothing of this chunk is taken as gone then
            seen = {_key_of(doc) for doc in found}
            closed = [doc for doc in found if _closed(doc)]  # the rest is the incremental read's business
            del found
            for i in range(0, len(closed), self.page_size):
                yield closed[i: i + self.page_size]
            gone = [tombstone_doc(fid, arn, account, region) for fid, arn in wanted if (fid, arn) not in seen]
            for doc in gone:
                log.warning("finding %s is no longer in Security Hub (closed V2 findings are deleted after 14 days)",
                            doc["finding_info"]["uid"], extra={"finding_id": doc["finding_info"]["uid"]})
            if gone:
                yield gone

    # -- writes ----------------------------------------------------------------------------------------------
    def update(self, scope: str, identifiers: Sequence[Mapping[str, str]],
               values: Mapping[str, Any]) -> list[Unprocessed]:
        """BatchUpdateFindingsV2 with the translated values, 100 findings per call."""
        scope = v2_scope(scope)
        params = translate_values(values, self.link_status)
        if not params:
            return []
        keys = [(x["Id"], x["ProductArn"]) for x in identifiers]
        failed: list[Unprocessed] = []
        try:
            self._hub.ready(scope)
            with self._lock:
                idents = {k: self._idents[k] for k in keys if k in self._idents}
            unknown = [k for k in keys if k not in idents]
            if unknown:  # looked up again (taken from the answer: the cache may already have let them go)
                idents.update((_key_of(doc), ident) for doc in self.by_ids(scope, unknown)
                              if (ident := _ident_of(doc)) is not None)
        except ScopeUnavailable as exc:
            return [Unprocessed(fid, arn, SCOPE_UNAVAILABLE, str(exc)) for fid, arn in keys]
        known = [k for k in keys if k in idents]
        failed += [Unprocessed(fid, arn, "ResourceNotFoundException", "the finding is not in Security Hub (V2)")
                   for fid, arn in keys if (fid, arn) not in idents]
        for i in range(0, len(known), MAX_IDS_PER_UPDATE):
            chunk = known[i: i + MAX_IDS_PER_UPDATE]
            try:
                reply = self._hub._call(scope, "batch_update_findings_v2",
                                        FindingIdentifiers=[idents[k] for k in chunk], **params)
            except ScopeUnavailable as exc:
                failed += [Unprocessed(fid, arn, SCOPE_UNAVAILABLE, str(exc)) for fid, arn in known[i:]]
                return failed
            for item in reply.get("UnprocessedFindings", []):
                ident = item.get("FindingIdentifier") or {}
                failed.append(Unprocessed(str(ident.get("FindingInfoUid", "")),
                                          asff_product_arn(str(ident.get("MetadataProductUid", ""))),
                                          str(item.get("ErrorCode", "")), str(item.get("ErrorMessage", ""))))
        return failed


def _closed(doc: Mapping[str, Any]) -> bool:
    """Whether a V2 finding says its issue may be resolved: closed by its provider (activity Close, status
    Archived), resolved or suppressed by someone (status 3, 4), or a control that now passes. Only these are
    handed on by the check of open issues: a finding that merely changed comes through the incremental read,
    and one whose link-back is still being written is not linked a second time."""
    compliance = doc.get("compliance")
    passed = isinstance(compliance, Mapping) and compliance.get("status_id") == 1
    return str(doc.get("activity_name", "")).casefold() == "close" or doc.get("status_id") in (3, 4, 5) or passed


def _split(scope: str) -> tuple[str, str]:
    account, _, region = scope.rpartition("/")
    return account, region
