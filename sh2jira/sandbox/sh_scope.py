"""Who is calling and which findings they may see: SigV4 identity, administrators, cross-region aggregation.

The region comes from the SigV4 credential scope, exactly as the real endpoint derives it; the account from
a table of access key ids (signatures are not checked: credentials are dummies). An administrator sees and
updates its members' findings. With a finding aggregator, GetFindings in the home region covers every
linked region and BatchUpdateFindings there reaches the finding in its own region.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sh2jira.sandbox.sh_errors import ServiceError, invalid_input

ALL_ACCOUNTS = "*"
LINKING_MODES = ("ALL_REGIONS", "ALL_REGIONS_EXCEPT_SPECIFIED", "SPECIFIED_REGIONS", "NO_REGIONS")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/[^/]+/aws4_request")


@dataclass(frozen=True)
class Caller:
    access_key: str
    account: str
    region: str


def identify(authorization: str | None, access_keys: Mapping[str, str] | None,
             default_account: str) -> Caller:
    """The caller of a SigV4-signed request; 403 errors as AWS answers them for missing/unknown keys."""
    if not authorization:
        raise ServiceError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
    found = _CREDENTIAL.search(authorization)
    if not found:
        raise ServiceError("IncompleteSignatureException",
                           "Authorization header has no SigV4 credential scope", 403)
    key, region = found.group(1), found.group(2)
    if access_keys is None:
        return Caller(key, default_account, region)
    if key not in access_keys:
        raise ServiceError("UnrecognizedClientException",
                           "The security token included in the request is invalid.", 403)
    return Caller(key, access_keys[key], region)


class Accounts:
    """Administrator → member accounts; `ALL_ACCOUNTS` ("*") as a member means every account."""

    def __init__(self, administrators: Mapping[str, Iterable[str]] | None = None) -> None:
        self._members = {admin: frozenset(members) for admin, members in (administrators or {}).items()}

    def visible_to(self, caller_account: str) -> Callable[[str], bool]:
        members = self._members.get(caller_account, frozenset())
        return lambda account: account == caller_account or ALL_ACCOUNTS in members or account in members


@dataclass(frozen=True)
class Aggregation:
    """A finding aggregator: the home region and how other regions are linked to it."""

    home_region: str
    mode: str = "ALL_REGIONS"
    regions: tuple[str, ...] = ()
    aggregator_id: str = "a1b2c3d4-5678-90ab-cdef-sandbox00001"

    @classmethod
    def checked(cls, home_region: str, mode: Any, regions: Any,
                aggregator_id: str | None = None) -> Aggregation:
        """Validate as CreateFindingAggregator does (InvalidInputException)."""
        if mode not in LINKING_MODES:
            raise invalid_input(f"RegionLinkingMode must be one of {', '.join(LINKING_MODES)}")
        regions = tuple(regions or ())
        if mode in ("ALL_REGIONS", "NO_REGIONS") and regions:
            raise invalid_input(f"Regions must be empty when RegionLinkingMode is {mode}")
        if mode in ("SPECIFIED_REGIONS", "ALL_REGIONS_EXCEPT_SPECIFIED") and not regions:
            raise invalid_input(f"Regions are required when RegionLinkingMode is {mode}")
        if aggregator_id is None:
            return cls(home_region, mode, regions)
        return cls(home_region, mode, regions, aggregator_id)

    def links(self, region: str) -> bool:
        if region == self.home_region:
            return True
        if self.mode == "ALL_REGIONS":
            return True
        if self.mode == "SPECIFIED_REGIONS":
            return region in self.regions
        if self.mode == "ALL_REGIONS_EXCEPT_SPECIFIED":
            return region not in self.regions
        return False

    def arn(self, account: str) -> str:
        return f"arn:aws:securityhub:{self.home_region}:{account}:finding-aggregator/{self.aggregator_id}"

    def matches_arn(self, arn: str) -> bool:
        return arn.endswith(f":finding-aggregator/{self.aggregator_id}")

    def describe(self, account: str) -> dict[str, Any]:
        out: dict[str, Any] = {"FindingAggregatorArn": self.arn(account), "FindingAggregationRegion":
                               self.home_region, "RegionLinkingMode": self.mode}
        if self.regions:
            out["Regions"] = list(self.regions)
        return out


def region_scope(aggregation: Aggregation | None, request_region: str) -> Callable[[str], bool]:
    """Which stores' regions a request in `request_region` reaches."""
    if aggregation is not None and request_region == aggregation.home_region:
        return aggregation.links
    return lambda region: region == request_region
