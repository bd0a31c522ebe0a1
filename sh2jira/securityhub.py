"""The Security Hub adapter: read changed findings page by page, write link-backs in batches.

Only boto3 calls live here. Throttling and 5xx are retried by botocore's own `standard`/`adaptive` retry
modes (configured, not hand-written); what is still unprocessed after that is returned to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

log = logging.getLogger(__name__)

MAX_IDS_PER_UPDATE = 100  # BatchUpdateFindings limit
MAX_VALUES_PER_FILTER = 20  # GetFindings limit per filter attribute


def iso(ts: datetime) -> str:
    """ASFF timestamp (UTC, milliseconds, Z)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime | None:
    """Parse an ASFF timestamp (any precision, Z or offset); None when unparseable."""
    if not text:
        return None
    t = text.strip().replace("Z", "+00:00")
    if "." in t:  # Python accepts at most 6 fraction digits; ASFF producers send up to 9
        head, rest = t.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        t = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        parsed = datetime.fromisoformat(t)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Unprocessed:
    id: str
    product_arn: str
    code: str
    message: str


ClientFactory = Callable[[str], Any]


def client_factory(*, endpoint_url: str | None = None, retry_mode: str = "standard", max_attempts: int = 8,
                   session: boto3.session.Session | None = None, timeout: float = 30) -> ClientFactory:
    """Security Hub clients per region, sharing one session; retries and timeouts the boto3 way."""
    sess = session or boto3.session.Session()
    cache: dict[str, Any] = {}
    cfg = BotoConfig(retries={"mode": retry_mode, "max_attempts": max_attempts}, connect_timeout=timeout,
                     read_timeout=timeout, user_agent_extra="sh2jira")

    def make(region: str) -> Any:
        if region not in cache:
            cache[region] = sess.client("securityhub", region_name=region, endpoint_url=endpoint_url, config=cfg)
        return cache[region]

    return make


class SecurityHub:
    """Reads and link-back writes against one or more regions (or one home region with aggregation)."""

    def __init__(self, clients: ClientFactory, page_size: int = 100) -> None:
        self._clients = clients
        self.page_size = page_size
        self.calls: dict[str, int] = {}

    def _call(self, region: str, op: str, **kwargs: Any) -> dict[str, Any]:
        self.calls[op] = self.calls.get(op, 0) + 1
        method = getattr(self._clients(region), op)
        result: dict[str, Any] = method(**kwargs)
        return result

    def pages(self, region: str, filters: Mapping[str, Any],
              sort_field: str = "UpdatedAt", sort_order: str = "asc") -> Iterator[list[dict[str, Any]]]:
        """All pages of GetFindings for these filters, oldest change first (so a cursor can follow)."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Filters": dict(filters), "MaxResults": self.page_size,
                                      "SortCriteria": [{"Field": sort_field, "SortOrder": sort_order}]}
            if token:
                kwargs["NextToken"] = token
            reply = self._call(region, "get_findings", **kwargs)
            yield list(reply.get("Findings", []))
            token = reply.get("NextToken")
            if not token:
                return

    def by_ids(self, region: str, identifiers: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Fetch specific findings (Id, ProductArn), 20 per GetFindings call (the per-attribute limit)."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(identifiers), MAX_VALUES_PER_FILTER):
            chunk = identifiers[i : i + MAX_VALUES_PER_FILTER]
            filters = {"Id": [{"Value": fid, "Comparison": "EQUALS"} for fid, _ in chunk]}
            wanted = set(chunk)
            for page in self.pages(region, filters):
                out.extend(f for f in page if (f.get("Id"), f.get("ProductArn")) in wanted)
        return out

    def update(self, region: str, identifiers: Sequence[Mapping[str, str]],
               values: Mapping[str, Any]) -> list[Unprocessed]:
        """BatchUpdateFindings with one set of values for all identifiers, in calls of 100."""
        failed: list[Unprocessed] = []
        for i in range(0, len(identifiers), MAX_IDS_PER_UPDATE):
            chunk = [dict(x) for x in identifiers[i : i + MAX_IDS_PER_UPDATE]]
            reply = self._call(region, "batch_update_findings", FindingIdentifiers=chunk, **values)
            for item in reply.get("UnprocessedFindings", []):
                ident = item.get("FindingIdentifier", {})
                failed.append(Unprocessed(ident.get("Id", ""), ident.get("ProductArn", ""),
                                          item.get("ErrorCode", ""), item.get("ErrorMessage", "")))
        return failed


def changed_since_filters(base: Mapping[str, list[dict[str, Any]]], start: datetime,
                          end: datetime) -> dict[str, list[dict[str, Any]]]:
    """The rulebook's coarse filters plus the UpdatedAt window of this cycle."""
    filters = {k: list(v) for k, v in base.items()}
    filters["UpdatedAt"] = [{"Start": iso(start), "End": iso(end)}]
    return filters
