"""Two Security Hubs behind one adapter: each scope goes to Security Hub CSPM or to the new Security Hub (V2).

`securityhub.source: both` reads every scope twice, once through GetFindings and once through GetFindingsV2
(scope `v2:<scope>`), and a CSPM control finding then arrives through both with the same identity (ocsf.py):
one ledger entry, one issue. Two copies of one finding must not both drive that issue (their descriptions
differ, and a closure written to one would look like "came back" on the other), so **each tracked finding has
one source of record**: the scope its ledger entry names (`Entry.region`), i.e. the source that first ticketed
it. A copy read through the other source is left out of planning while that source is configured. With the
default order (CSPM scopes first) a finding both sources carry is driven by CSPM, exactly as before V2 existed,
so existing ledgers keep working unchanged. When the entry's source is no longer configured (a switch from
`cspm` to `v2`), the source reading the finding takes it over: the entry's scope is rewritten, and its issue,
link-back and closures follow the new source from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .ledger import Ledger
from .ocsf import raw_key
from .securityhub import ScopeUnavailable, SecurityHub, Unprocessed
from .securityhub_v2 import SecurityHubV2, is_v2_scope

log = logging.getLogger(__name__)


class RoutedHub:
    """Routes each call by scope (`v2:` → SecurityHubV2, else SecurityHub) and keeps one source per finding."""

    def __init__(self, cspm: SecurityHub, v2: SecurityHubV2 | None, ledger: Ledger, scopes: Sequence[str]) -> None:
        self.cspm = cspm
        self.v2 = v2
        self.ledger = ledger
        self.scopes = set(scopes)
        self.page_size = cspm.page_size
        self.left_out = 0  # copies read through the source that does not own their finding

    def _hub(self, scope: str) -> Any:
        if is_v2_scope(scope):
            if self.v2 is None:
                raise ValueError(f"scope {scope} needs securityhub.source v2 or both")
            return self.v2
        return self.cspm

    @property
    def calls(self) -> dict[str, int]:
        merged = dict(self.cspm.calls)
        for op, n in (self.v2.calls if self.v2 else {}).items():
            merged[op] = merged.get(op, 0) + n
        return merged

    def begin_cycle(self) -> None:
        self.cspm.begin_cycle()
        if self.v2 is not None:
            self.v2.begin_cycle()

    @property
    def unavailable(self) -> dict[str, ScopeUnavailable]:
        return {**self.cspm.unavailable, **(self.v2.unavailable if self.v2 else {})}

    def ready(self, scope: str) -> None:
        self._hub(scope).ready(scope)

    def pages(self, scope: str, filters: Mapping[str, Any], sort_field: str = "UpdatedAt",
              sort_order: str = "asc") -> Iterator[list[dict[str, Any]]]:
        for page in self._hub(scope).pages(scope, filters, sort_field, sort_order):
            yield self.owned(scope, page)

    def by_ids(self, scope: str, identifiers: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        return list(self._hub(scope).by_ids(scope, identifiers))

    def update(self, scope: str, identifiers: Sequence[Mapping[str, str]],
               values: Mapping[str, Any]) -> list[Unprocessed]:
        return list(self._hub(scope).update(scope, identifiers, values))

    def owned(self, scope: str, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page without copies whose finding another configured source owns; entries of a source no longer
        configured are taken over by this scope."""
        keys = {id(raw): k for raw in page if (k := raw_key(raw)) is not None}
        if not keys:
            return page
        entries = self.ledger.get({k.digest for k in keys.values()})
        v2 = is_v2_scope(scope)
        kept, takeover = [], []
        for raw in page:
            key = keys.get(id(raw))
            entry = entries.get(key.digest) if key is not None else None
            if entry is None or not entry.region or is_v2_scope(entry.region) == v2:
                kept.append(raw)
            elif entry.region in self.scopes:
                self.left_out += 1
                log.debug("finding %s: read through %s, driven by %s", entry.finding_id, scope, entry.region,
                          extra={"finding_id": entry.finding_id, "issue_key": entry.issue_key})
            else:
                takeover.append(entry.with_(region=scope, changed_at=entry.changed_at))
                kept.append(raw)
        if takeover:
            self.ledger.put(takeover)
            log.info("%d finding(s) of a source no longer configured are now read through %s", len(takeover), scope)
        return kept
