"""GetFindings' cached query order: why the Security Hub stand-in answers a page in microseconds at 100,000+ findings.

Filtering and sorting every stored finding for every page costs ≈30 µs a finding (1 s a page at 33,000 findings
per region): the stand-in, not sh2jira, would be what a large test or bench measures. So each query (filters, sort,
caller, region: the NextToken digest) keeps its matches in sort order, and keyset paging makes page N+1 "the
matches after key K", found by binary search. The answers stay exactly those of filtering everything afresh:
- every finding a page returns is re-checked against its live document when that document changed since it was
  keyed: one that no longer matches is left out, one whose sort key moved drops the cached order (rebuilt);
- an import, a tamper, an aggregator change or a reset drops every cached order; a BatchUpdateFindings updates, in
  place, the orders of the queries that read a field it writes (Workflow, Note, UserDefinedFields, Severity, ...):
  each finding it wrote leaves the order, moves in it or joins it, by that query's own filters and sort (a link-back
  per page used to drop the order each time, and rebuilding it for 40,000 findings a scope made a million-finding
  bench wait on the stand-in);
- relative date filters (DateRange) move with the clock and are never cached (the caller scans).
At most MAX_CACHED_QUERIES orders are kept (least recently used goes). The caller holds the app's lock.
tests/sandbox/test_securityhub_index.py checks page for page that both paths answer alike.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sh2jira.sandbox.sh_filters import FILTER_PATHS, compare_keys
from sh2jira.sandbox.sh_store import StoredFinding

# A query is per caller and region: sh2jira with 8 member accounts in 3 regions reads 24 scopes side by side, and an
# LRU smaller than that rebuilt every scope's order on every page (40,000 findings a scope at a million in all).
MAX_CACHED_QUERIES = 64
# Top-level document fields BatchUpdateFindings may write, by request member (sh_store.apply_update).
WRITES = {"UserDefinedFields": "UserDefinedFields", "Workflow": "Workflow", "Note": "Note", "Severity": "Severity",
          "VerificationState": "VerificationState", "Confidence": "Confidence", "Criticality": "Criticality",
          "Types": "Types", "RelatedFindings": "RelatedFindings"}

_Entry = tuple[list[Any], StoredFinding, dict[str, Any]]  # sort key, finding, the document it was keyed from
Key = Callable[[StoredFinding], list[Any]]


@dataclass
class _Query:
    """One query's matches in sort order, and what it takes to keep them so through writes."""

    reads: frozenset[str]  # top-level fields the filters and the sort read
    entries: list[_Entry]
    predicate: Callable[[Any], bool]
    key: Key
    descending: list[bool]
    stores: list[dict[Any, StoredFinding]]  # what the caller reaches: a written finding elsewhere is not its
    keys: dict[int, list[Any]] = field(default_factory=dict)  # id(finding) → its key in `entries`

    def __post_init__(self) -> None:
        self.keys = {id(sf): k for k, sf, _ in self.entries}

    def reaches(self, sf: StoredFinding) -> bool:
        return any(store.get(sf.key) is sf for store in self.stores)

    def rewrite(self, sf: StoredFinding) -> None:
        """`sf` was written: out of the order when it no longer matches, at its (new) place when it does."""
        old = self.keys.pop(id(sf), None)
        if old is not None:
            at = _first_after(self.entries, old, self.descending) - 1
            while self.entries[at][1] is not sf:  # keys are unique (they end with the finding's identity)
                at -= 1
            del self.entries[at]
        if (old is not None or self.reaches(sf)) and self.predicate(sf.doc):
            new = self.key(sf)
            self.entries.insert(_first_after(self.entries, new, self.descending), (new, sf, sf.doc))
            self.keys[id(sf)] = new


def _top(path: str) -> str:
    return path.split(".", 1)[0].removesuffix("[]")


def reads_of(filter_names: Iterable[str], sort_paths: Iterable[str]) -> frozenset[str]:
    """The top-level fields a query reads: its filters' and its sort's."""
    return frozenset([_top(FILTER_PATHS[name]) for name in filter_names if name in FILTER_PATHS]
                     + [_top(path) for path in sort_paths])


class QueryIndex:
    """The cached orders of the latest queries (see the module docstring)."""

    def __init__(self) -> None:
        self._queries: OrderedDict[str, _Query] = OrderedDict()
        self.rebuilds = 0  # how often an order was computed from scratch (tests check the cache is used)

    def clear(self) -> None:
        self._queries.clear()

    def written(self, update_members: Iterable[str], findings: Iterable[StoredFinding]) -> None:
        """A BatchUpdateFindings with these members wrote `findings`: the orders of the queries that read what it
        writes are brought up to date with them."""
        fields = {WRITES[name] for name in update_members if name in WRITES} | {"ProcessedAt"}
        touched = [q for q in self._queries.values() if q.reads & fields]
        if touched:
            for sf in findings:
                for query in touched:
                    query.rewrite(sf)

    def page(self, digest: str, reads: frozenset[str], stores: list[dict[Any, StoredFinding]],
             predicate: Callable[[Any], bool], key: Key, descending: list[bool], after: list[Any] | None,
             limit: int) -> tuple[list[StoredFinding], list[Any] | None]:
        """One page after `after` and the key to continue from (None at the end), as `sh_paging.page` gives.
        `stores` are the account+region stores the caller reaches."""
        for _ in range(2):  # a second pass only after a changed sort key dropped the cached order
            query = self._query(digest, reads, stores, predicate, key, descending)
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

    def _query(self, digest: str, reads: frozenset[str], stores: list[dict[Any, StoredFinding]],
               predicate: Callable[[Any], bool], key: Key, descending: list[bool]) -> _Query:
        query = self._queries.get(digest)
        if query is not None:
            self._queries.move_to_end(digest)
            return query
        self.rebuilds += 1
        keyed = [(key(sf), sf, sf.doc) for store in stores for sf in store.values() if predicate(sf.doc)]

        def order(a: _Entry, b: _Entry) -> int:
            return compare_keys(a[0], b[0], descending)

        keyed.sort(key=functools.cmp_to_key(order))
        query = _Query(reads, keyed, predicate, key, descending, stores)
        self._queries[digest] = query
        while len(self._queries) > MAX_CACHED_QUERIES:
            self._queries.popitem(last=False)
        return query


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
