"""The Security Hub stand-in with indexed reads and writes, so that 100,000 findings do not make it the bottleneck.

The stock stand-in filters and sorts every stored finding on every GetFindings page (≈30 µs per finding: 1 s a
page at 33,000 findings per region) and scans them all for each identifier of a BatchUpdateFindings. That is
fine for tests but would measure the stand-in, not sh2jira. This subclass gives the same answers:

- GetFindings keeps each query's sorted matches (keyset paging makes page N+1 "the matches after key K") and
  re-checks every finding it returns against the live document, so a finding that changed since is filtered
  and keyed afresh; a changed sort key, any import, a tamper, or a BatchUpdateFindings that writes a field the
  query reads drops the cached order. Relative date filters (DateRange) move with the clock and are not cached.
- BatchUpdateFindings looks each identifier up in the reachable account+region stores (dicts by key) instead
  of scanning every finding.
- The "Findings - Imported" events (a deep copy of the finding per write) are counted, not kept, unless asked:
  nothing in the bench reads them, and 100,000 copies would only grow the bench process.

`tests/test_bench_smoke.py` checks page for page that it answers as the stock stand-in does.
"""

from __future__ import annotations

import copy
import functools
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.sh_filters import (
    DEFAULT_SORT,
    FILTER_PATHS,
    compare_keys,
    compile_filters,
    resolve_sort_field,
    sort_values,
)
from sh2jira.sandbox.sh_paging import decode_token, encode_token, query_digest
from sh2jira.sandbox.sh_scope import Aggregation, Caller, region_scope
from sh2jira.sandbox.sh_store import Key, StoredFinding, apply_update
from sh2jira.sandbox.sh_validate import format_timestamp

MAX_CACHED_QUERIES = 8
# Top-level document fields BatchUpdateFindings may write, by request member (sh_store.apply_update).
_WRITES = {"UserDefinedFields": "UserDefinedFields", "Workflow": "Workflow", "Note": "Note", "Severity": "Severity",
           "VerificationState": "VerificationState", "Confidence": "Confidence", "Criticality": "Criticality",
           "Types": "Types", "RelatedFindings": "RelatedFindings"}


_Entry = tuple[list[Any], StoredFinding, dict[str, Any]]  # sort key, finding, the document it was keyed from


@dataclass
class _Query:
    """One query's matches in sort order."""

    reads: frozenset[str]  # top-level fields the filters and the sort read
    entries: list[_Entry] = field(default_factory=list)


def _top(path: str) -> str:
    return path.split(".", 1)[0].removesuffix("[]")


class IndexedSecurityHubApp(SecurityHubApp):
    """SecurityHubApp with cached query order and a key index; same constructor, controls and answers."""

    def __init__(self, *, keep_events: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keep_events = keep_events
        self.events_emitted = 0
        self._queries: OrderedDict[str, _Query] = OrderedDict()
        self.rebuilds = 0  # how often a query's order was computed from scratch (for the bench's own checks)

    # -- invalidation --------------------------------------------------------------------------------------
    def _forget(self) -> None:
        with self._lock:
            self._queries.clear()

    def reset(self) -> None:
        super().reset()
        self._forget()

    def set_aggregation(self, aggregation: Aggregation | None) -> None:
        super().set_aggregation(aggregation)
        self._forget()

    def tamper(self, finding_id: str, mutate: Callable[[dict[str, Any]], None],
               product_arn: str | None = None) -> int:
        with self._lock:
            self._queries.clear()
            return super().tamper(finding_id, mutate, product_arn)

    def _import_many(self, findings: list[Any], region: str, account: str | None) -> dict[str, Any]:
        with self._lock:
            self._queries.clear()
            return super()._import_many(findings, region, account)

    def _emit(self, stored: StoredFinding) -> None:
        self.events_emitted += 1
        if self.keep_events:
            super()._emit(stored)

    # -- GetFindings ---------------------------------------------------------------------------------------
    def _get_findings(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        filters = params.get("Filters") or {}
        if "DateRange" in json.dumps(filters):
            return super()._get_findings(caller, params)
        self._validated("GetFindings", params)
        criteria = params.get("SortCriteria") or list(DEFAULT_SORT)
        fields = [resolve_sort_field(c.get("Field")) for c in criteria]
        descending = [c.get("SortOrder", "asc") == "desc" for c in criteria]
        predicate = compile_filters(filters, self._now())
        digest = query_digest(filters, criteria, caller.account, caller.region)
        token = params.get("NextToken")
        after = decode_token(token, digest, len(fields) + 4) if token else None
        limit = params.get("MaxResults", 100)

        def key(sf: StoredFinding) -> list[Any]:
            return sort_values(sf.doc, fields) + [sf.doc["ProductArn"], sf.doc["Id"], sf.account, sf.region]

        reads = frozenset([_top(FILTER_PATHS[name]) for name in filters if name in FILTER_PATHS]
                          + [_top(path) for path, _ in fields])
        with self._lock:
            chunk, next_after = self._page(digest, reads, caller, predicate, key, descending, after, limit)
            out: dict[str, Any] = {"Findings": [copy.deepcopy(sf.doc) for sf in chunk]}
        if next_after is not None:
            out["NextToken"] = encode_token(digest, next_after)
        return out

    def _page(self, digest: str, reads: frozenset[str], caller: Caller, predicate: Callable[[Any], bool],
              key: Callable[[StoredFinding], list[Any]], descending: list[bool], after: list[Any] | None,
              limit: int) -> tuple[list[StoredFinding], list[Any] | None]:
        for _ in range(2):  # a second pass only after a changed sort key dropped the cached order
            query = self._query(digest, reads, caller, predicate, key, descending)
            start = _first_after(query.entries, after, descending)
            taken: list[tuple[list[Any], StoredFinding]] = []
            stale = False
            for k, sf, doc in query.entries[start:]:
                if sf.doc is not doc:
                    if not predicate(sf.doc):
                        continue
                    if key(sf) != k:
                        stale = True
                        break
                taken.append((k, sf))
                if len(taken) > limit:
                    break
            if not stale:
                chunk = taken[:limit]
                next_after = chunk[-1][0] if len(taken) > limit else None
                return [sf for _, sf in chunk], next_after
            self._queries.pop(digest, None)
        raise AssertionError("a freshly built order cannot be stale")  # pragma: no cover

    def _query(self, digest: str, reads: frozenset[str], caller: Caller, predicate: Callable[[Any], bool],
               key: Callable[[StoredFinding], list[Any]], descending: list[bool]) -> _Query:
        query = self._queries.get(digest)
        if query is not None:
            self._queries.move_to_end(digest)
            return query
        self.rebuilds += 1
        keyed = [(key(sf), sf, sf.doc) for sf in self._reachable(caller) if predicate(sf.doc)]

        def order(a: _Entry, b: _Entry) -> int:
            return compare_keys(a[0], b[0], descending)

        keyed.sort(key=functools.cmp_to_key(order))
        query = _Query(reads, keyed)
        self._queries[digest] = query
        while len(self._queries) > MAX_CACHED_QUERIES:
            self._queries.popitem(last=False)
        return query

    def _reachable_stores(self, caller: Caller) -> list[dict[Key, StoredFinding]]:
        """The account+region stores `_reachable` reads, in its order (a finding is keyed once per store)."""
        visible = self._accounts.visible_to(caller.account)
        in_scope = region_scope(self._aggregation, caller.region)
        return [store for (acct, reg), store in self._stores.items() if visible(acct) and in_scope(reg)]

    # -- BatchUpdateFindings -------------------------------------------------------------------------------
    def _batch_update(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        """As SecurityHubApp._batch_update, with the findings looked up by key instead of scanned."""
        identifiers, update = self._update_request(params)
        fault = self._faults.take_unprocessed()
        now = format_timestamp(self._now())
        processed: list[dict[str, str]] = []
        unprocessed: list[dict[str, Any]] = []
        written = {_WRITES[name] for name in update if name in _WRITES} | {"ProcessedAt"}
        with self._lock:
            for digest in [d for d, q in self._queries.items() if q.reads & written]:
                del self._queries[digest]
            stores = self._reachable_stores(caller)
            for ident in identifiers:
                if fault is not None and (fault.ids is None or ident["Id"] in fault.ids):
                    unprocessed.append({"FindingIdentifier": ident, "ErrorCode": fault.code,
                                        "ErrorMessage": fault.message})
                    continue
                key = (ident["ProductArn"], ident["Id"])
                matches = [store[key] for store in stores if key in store]
                if not matches:
                    unprocessed.append({"FindingIdentifier": ident, "ErrorCode": "FindingNotFound",
                                        "ErrorMessage": "Finding not found"})
                    continue
                errors = [err for sf in matches if (err := apply_update(sf, update, now)) is not None]
                if errors:
                    code, message = errors[0]
                    unprocessed.append({"FindingIdentifier": ident, "ErrorCode": code, "ErrorMessage": message})
                    continue
                processed.append({"Id": ident["Id"], "ProductArn": ident["ProductArn"]})
                for sf in matches:
                    self._emit(sf)
        return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}


def _first_after(entries: list[_Entry], after: list[Any] | None, descending: list[bool]) -> int:
    """Index of the first entry whose key sorts after `after` (binary search on the cached order)."""
    if after is None:
        return 0
    lo, hi = 0, len(entries)
    while lo < hi:
        mid = (lo + hi) // 2
        if compare_keys(entries[mid][0], after, descending) > 0:
            hi = mid
        else:
            lo = mid + 1
    return lo
