"""GetFindings filter and sort semantics, as pure functions over ASFF documents.

Filter kinds come from the model (each AwsSecurityFindingFilters member is a list of StringFilter,
NumberFilter, DateFilter, MapFilter, BooleanFilter, IpFilter or KeywordFilter); the path each filter name
reads is the table below, checked against the model by the tests. Semantics follow the API reference:
positive comparisons (EQUALS, PREFIX, CONTAINS) of one attribute are OR'ed, negative ones (NOT_EQUALS,
PREFIX_NOT_EQUALS, NOT_CONTAINS) AND'ed, attributes AND'ed; CONTAINS/NOT_CONTAINS may not be mixed with
other comparisons and EQUALS not with NOT_EQUALS/PREFIX_NOT_EQUALS. A path with `[]` is multi-valued
(any element may match; a negative comparison requires that no element matches). A filter name without a
path here is refused with InvalidInputException rather than answered wrongly.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sh2jira.sandbox.sh_errors import as_json, invalid_input
from sh2jira.sandbox.sh_model import shape
from sh2jira.sandbox.sh_validate import parse_timestamp

MAX_ATTRIBUTES = 10
MAX_VALUES = 20
_R = "Resources[]."
_EC2 = _R + "Details.AwsEc2Instance."
_FPF = "FindingProviderFields."

FILTER_PATHS: dict[str, str] = {
    "ProductArn": "ProductArn", "AwsAccountId": "AwsAccountId", "Id": "Id", "GeneratorId": "GeneratorId",
    "Region": "Region", "Type": "Types[]", "FirstObservedAt": "FirstObservedAt",
    "LastObservedAt": "LastObservedAt", "CreatedAt": "CreatedAt", "UpdatedAt": "UpdatedAt",
    "SeverityProduct": "Severity.Product", "SeverityNormalized": "Severity.Normalized",
    "SeverityLabel": "Severity.Label", "Confidence": "Confidence", "Criticality": "Criticality",
    "Title": "Title", "Description": "Description", "RecommendationText": "Remediation.Recommendation.Text",
    "SourceUrl": "SourceUrl", "ProductFields": "ProductFields", "ProductName": "ProductName",
    "CompanyName": "CompanyName", "UserDefinedFields": "UserDefinedFields",
    "MalwareName": "Malware[].Name", "MalwareType": "Malware[].Type", "MalwarePath": "Malware[].Path",
    "MalwareState": "Malware[].State", "NetworkDirection": "Network.Direction",
    "NetworkProtocol": "Network.Protocol", "NetworkSourceIpV4": "Network.SourceIpV4",
    "NetworkSourceIpV6": "Network.SourceIpV6", "NetworkSourcePort": "Network.SourcePort",
    "NetworkSourceDomain": "Network.SourceDomain", "NetworkSourceMac": "Network.SourceMac",
    "NetworkDestinationIpV4": "Network.DestinationIpV4", "NetworkDestinationIpV6": "Network.DestinationIpV6",
    "NetworkDestinationPort": "Network.DestinationPort",
    "NetworkDestinationDomain": "Network.DestinationDomain",
    "ProcessName": "Process.Name", "ProcessPath": "Process.Path", "ProcessPid": "Process.Pid",
    "ProcessParentPid": "Process.ParentPid", "ProcessLaunchedAt": "Process.LaunchedAt",
    "ProcessTerminatedAt": "Process.TerminatedAt",
    "ThreatIntelIndicatorType": "ThreatIntelIndicators[].Type",
    "ThreatIntelIndicatorValue": "ThreatIntelIndicators[].Value",
    "ThreatIntelIndicatorCategory": "ThreatIntelIndicators[].Category",
    "ThreatIntelIndicatorLastObservedAt": "ThreatIntelIndicators[].LastObservedAt",
    "ThreatIntelIndicatorSource": "ThreatIntelIndicators[].Source",
    "ThreatIntelIndicatorSourceUrl": "ThreatIntelIndicators[].SourceUrl",
    "ResourceType": _R + "Type", "ResourceId": _R + "Id", "ResourcePartition": _R + "Partition",
    "ResourceRegion": _R + "Region", "ResourceTags": _R + "Tags",
    "ResourceAwsEc2InstanceType": _EC2 + "Type", "ResourceAwsEc2InstanceImageId": _EC2 + "ImageId",
    "ResourceAwsEc2InstanceIpV4Addresses": _EC2 + "IpV4Addresses[]",
    "ResourceAwsEc2InstanceIpV6Addresses": _EC2 + "IpV6Addresses[]",
    "ResourceAwsEc2InstanceKeyName": _EC2 + "KeyName",
    "ResourceAwsEc2InstanceIamInstanceProfileArn": _EC2 + "IamInstanceProfileArn",
    "ResourceAwsEc2InstanceVpcId": _EC2 + "VpcId", "ResourceAwsEc2InstanceSubnetId": _EC2 + "SubnetId",
    "ResourceAwsEc2InstanceLaunchedAt": _EC2 + "LaunchedAt",
    "ResourceAwsS3BucketOwnerId": _R + "Details.AwsS3Bucket.OwnerId",
    "ResourceAwsS3BucketOwnerName": _R + "Details.AwsS3Bucket.OwnerName",
    "ResourceAwsIamAccessKeyUserName": _R + "Details.AwsIamAccessKey.UserName",
    "ResourceAwsIamAccessKeyPrincipalName": _R + "Details.AwsIamAccessKey.PrincipalName",
    "ResourceAwsIamAccessKeyStatus": _R + "Details.AwsIamAccessKey.Status",
    "ResourceAwsIamAccessKeyCreatedAt": _R + "Details.AwsIamAccessKey.CreatedAt",
    "ResourceAwsIamUserUserName": _R + "Details.AwsIamUser.UserName",
    "ResourceContainerName": _R + "Details.Container.Name",
    "ResourceContainerImageId": _R + "Details.Container.ImageId",
    "ResourceContainerImageName": _R + "Details.Container.ImageName",
    "ResourceContainerLaunchedAt": _R + "Details.Container.LaunchedAt",
    "ResourceDetailsOther": _R + "Details.Other", "ComplianceStatus": "Compliance.Status",
    "VerificationState": "VerificationState", "WorkflowState": "WorkflowState",
    "WorkflowStatus": "Workflow.Status", "RecordState": "RecordState",
    "RelatedFindingsProductArn": "RelatedFindings[].ProductArn", "RelatedFindingsId": "RelatedFindings[].Id",
    "NoteText": "Note.Text", "NoteUpdatedAt": "Note.UpdatedAt", "NoteUpdatedBy": "Note.UpdatedBy",
    "FindingProviderFieldsConfidence": _FPF + "Confidence",
    "FindingProviderFieldsCriticality": _FPF + "Criticality",
    "FindingProviderFieldsRelatedFindingsId": _FPF + "RelatedFindings[].Id",
    "FindingProviderFieldsRelatedFindingsProductArn": _FPF + "RelatedFindings[].ProductArn",
    "FindingProviderFieldsSeverityLabel": _FPF + "Severity.Label",
    "FindingProviderFieldsSeverityOriginal": _FPF + "Severity.Original",
    "FindingProviderFieldsTypes": _FPF + "Types[]", "Sample": "Sample",
    "ComplianceSecurityControlId": "Compliance.SecurityControlId",
    "ComplianceAssociatedStandardsId": "Compliance.AssociatedStandards[].StandardsId",
    "VulnerabilitiesExploitAvailable": "Vulnerabilities[].ExploitAvailable",
    "VulnerabilitiesFixAvailable": "Vulnerabilities[].FixAvailable",
    "ComplianceSecurityControlParametersName": "Compliance.SecurityControlParameters[].Name",
    "ComplianceSecurityControlParametersValue": "Compliance.SecurityControlParameters[].Value[]",
    "AwsAccountName": "AwsAccountName", "ResourceApplicationName": _R + "ApplicationName",
    "ResourceApplicationArn": _R + "ApplicationArn", "ResourceOwnerAccountId": _R + "Owner.Account.Id",
    "ResourceOwnerOrgId": _R + "Owner.Org.Id", "ResourceProvider": _R + "Provider",
}
# Filter names the stand-in refuses: the API reference does not say which fields Keyword searches.
UNSUPPORTED = frozenset({"Keyword"})

_POSITIVE = {"EQUALS", "PREFIX", "CONTAINS"}
_NEGATED = {"NOT_EQUALS": "EQUALS", "PREFIX_NOT_EQUALS": "PREFIX", "NOT_CONTAINS": "CONTAINS"}
Predicate = Callable[[Mapping[str, Any]], bool]


@functools.cache
def filter_kind(name: str) -> str:
    """'StringFilter', 'DateFilter', ... for a filter attribute, from the model."""
    members = shape("AwsSecurityFindingFilters").members
    if name not in members:
        raise invalid_input(f"Filters: unknown filter attribute {name!r}")
    return str(members[name].member.name)


def values_at(doc: Mapping[str, Any], path: str) -> list[Any]:
    """Every value at a dotted path; `name[]` fans out over a list."""
    nodes: list[Any] = [doc]
    for part in path.split("."):
        fan_out = part.endswith("[]")
        key = part[:-2] if fan_out else part
        nxt: list[Any] = []
        for node in nodes:
            if isinstance(node, Mapping) and node.get(key) is not None:
                value = node[key]
                if fan_out and isinstance(value, list):
                    nxt.extend(v for v in value if v is not None)
                elif not fan_out:
                    nxt.append(value)
        nodes = nxt
    return nodes


def compile_filters(filters: Mapping[str, Any] | None, now: datetime) -> Predicate:
    """One predicate for a GetFindings `Filters` value; InvalidInputException for what the API refuses."""
    filters = filters or {}
    active = {k: v for k, v in filters.items() if v}
    if len(active) > MAX_ATTRIBUTES:
        raise invalid_input(f"Filters: at most {MAX_ATTRIBUTES} filter attributes are allowed, "
                            f"got {len(active)}")
    parts: list[Predicate] = []
    for name, entries in active.items():
        kind = filter_kind(name)
        if name in UNSUPPORTED or name not in FILTER_PATHS:
            raise invalid_input(f"Filters: the sandbox does not support the {name} filter")
        if not isinstance(entries, list):
            raise invalid_input(f"Filters.{name} must be a list")
        if len(entries) > MAX_VALUES:
            raise invalid_input(f"Filters.{name}: at most {MAX_VALUES} values per attribute, "
                                f"got {len(entries)}")
        builder = _BUILDERS.get(kind)
        if builder is None:
            raise invalid_input(f"Filters: the sandbox does not support {kind} ({name})")
        parts.append(builder(name, FILTER_PATHS[name], entries, now))
    return lambda doc: all(part(doc) for part in parts)


def _check_mix(name: str, comparisons: set[str]) -> None:
    if "CONTAINS_WORD" in comparisons:
        raise invalid_input(f"Filters.{name}: CONTAINS_WORD is only supported by the V2 APIs")
    for only in ("CONTAINS", "NOT_CONTAINS"):
        if only in comparisons and comparisons != {only}:
            raise invalid_input(f"Filters.{name}: {only} filters can only be used with other {only} filters")
    if "EQUALS" in comparisons and comparisons & {"NOT_EQUALS", "PREFIX_NOT_EQUALS"}:
        raise invalid_input(f"Filters.{name}: EQUALS cannot be combined with NOT_EQUALS or PREFIX_NOT_EQUALS")


def _compare(actual: str, comparison: str, wanted: str) -> bool:
    if comparison == "EQUALS":
        return actual == wanted
    if comparison == "PREFIX":
        return actual.startswith(wanted)
    return wanted in actual


def _split(name: str, entries: list[Any], allowed: set[str],
           needs: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    for entry in entries:
        if not isinstance(entry, dict) or any(not isinstance(entry.get(k), str) for k in needs):
            raise invalid_input(f"Filters.{name}: each filter needs {' and '.join(needs)}: {as_json(entry)}")
    comparisons = {e["Comparison"] for e in entries}
    _check_mix(name, comparisons)
    unknown = comparisons - allowed
    if unknown:
        raise invalid_input(f"Filters.{name}: comparison {sorted(unknown)[0]} is not allowed here")
    positives = [e for e in entries if e["Comparison"] in _POSITIVE]
    negatives = [dict(e, Comparison=_NEGATED[e["Comparison"]])
                 for e in entries if e["Comparison"] in _NEGATED]
    return positives, negatives


def _combine(positives: list[Any], negatives: list[Any], hit: Callable[[Any, Any], bool]) -> Predicate:
    def predicate(doc: Mapping[str, Any]) -> bool:
        if positives and not any(hit(doc, f) for f in positives):
            return False
        return not any(hit(doc, f) for f in negatives)
    return predicate


def _string_filter(name: str, path: str, entries: list[Any], now: datetime) -> Predicate:
    positives, negatives = _split(name, entries, _POSITIVE | set(_NEGATED), ("Value", "Comparison"))

    def hit(doc: Mapping[str, Any], f: dict[str, Any]) -> bool:
        return any(_compare(str(v), f["Comparison"], f["Value"]) for v in values_at(doc, path)
                   if not isinstance(v, dict | list))
    return _combine(positives, negatives, hit)


def _map_filter(name: str, path: str, entries: list[Any], now: datetime) -> Predicate:
    allowed = {"EQUALS", "NOT_EQUALS", "CONTAINS", "NOT_CONTAINS"}
    positives, negatives = _split(name, entries, allowed, ("Key", "Value", "Comparison"))

    def hit(doc: Mapping[str, Any], f: dict[str, Any]) -> bool:
        return any(isinstance(m, Mapping) and isinstance(m.get(f["Key"]), str)
                   and _compare(m[f["Key"]], f["Comparison"], f["Value"]) for m in values_at(doc, path))
    return _combine(positives, negatives, hit)


def _number_filter(name: str, path: str, entries: list[Any], now: datetime) -> Predicate:
    checks = {"Gte": float.__ge__, "Lte": float.__le__, "Eq": float.__eq__, "Gt": float.__gt__,
              "Lt": float.__lt__}
    for entry in entries:
        if not isinstance(entry, dict) or not entry or set(entry) - set(checks):
            raise invalid_input(f"Filters.{name}: a NumberFilter needs one of Gte, Lte, Eq, Gt, Lt")

    def matches(value: Any, entry: dict[str, Any]) -> bool:
        return all(checks[k](float(value), float(bound)) for k, bound in entry.items())

    def predicate(doc: Mapping[str, Any]) -> bool:
        numbers = [v for v in values_at(doc, path) if isinstance(v, int | float) and not isinstance(v, bool)]
        return any(matches(v, e) for v in numbers for e in entries)
    return predicate


def _date_filter(name: str, path: str, entries: list[Any], now: datetime) -> Predicate:
    windows: list[tuple[datetime | None, datetime | None]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise invalid_input(f"Filters.{name}: a DateFilter must be an object")
        date_range = entry.get("DateRange")
        if date_range is not None:
            if "Start" in entry or "End" in entry:
                raise invalid_input(f"Filters.{name}: use either DateRange or Start/End, not both")
            if not isinstance(date_range.get("Value"), int) or date_range.get("Unit") != "DAYS":
                raise invalid_input(f"Filters.{name}: DateRange needs an integer Value and Unit DAYS")
            cutoff = now - timedelta(days=date_range["Value"])
            older = date_range.get("Comparison", "WITHIN") == "OLDER_THAN"
            windows.append((None, cutoff - timedelta(microseconds=1)) if older else (cutoff, None))
            continue
        if "Start" not in entry and "End" not in entry:
            raise invalid_input(f"Filters.{name}: a DateFilter needs Start, End or DateRange")
        windows.append((_bound(name, entry.get("Start")), _bound(name, entry.get("End"))))

    def inside(moment: datetime, window: tuple[datetime | None, datetime | None]) -> bool:
        return (window[0] is None or moment >= window[0]) and (window[1] is None or moment <= window[1])

    def predicate(doc: Mapping[str, Any]) -> bool:
        moments = [parse_timestamp(v) for v in values_at(doc, path) if isinstance(v, str)]
        return any(inside(m, w) for m in moments if m is not None for w in windows)
    return predicate


def _bound(name: str, text: Any) -> datetime | None:
    if text is None:
        return None
    moment = parse_timestamp(text) if isinstance(text, str) else None
    if moment is None:
        raise invalid_input(f"Filters.{name}: {text!r} is not a valid timestamp")
    return moment


def _boolean_filter(name: str, path: str, entries: list[Any], now: datetime) -> Predicate:
    if any(not isinstance(e, dict) or not isinstance(e.get("Value"), bool) for e in entries):
        raise invalid_input(f"Filters.{name}: a BooleanFilter needs a boolean Value")
    wanted = {e["Value"] for e in entries}

    def predicate(doc: Mapping[str, Any]) -> bool:
        found = values_at(doc, path)
        return (bool(found) and found[0] is True) in wanted  # a missing flag counts as false
    return predicate


def _ip_filter(name: str, path: str, entries: list[Any], now: datetime) -> Predicate:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry.get("Cidr")), strict=False))
        except (ValueError, AttributeError) as exc:
            raise invalid_input(f"Filters.{name}: {as_json(entry)} is not a valid Cidr") from exc

    def contained(text: Any) -> bool:
        try:
            address = ipaddress.ip_address(str(text))
        except ValueError:
            return False
        return any(address.version == n.version and address in n for n in networks)
    return lambda doc: any(contained(v) for v in values_at(doc, path))


_BUILDERS: dict[str, Callable[[str, str, list[Any], datetime], Predicate]] = {
    "StringFilter": _string_filter, "MapFilter": _map_filter, "NumberFilter": _number_filter,
    "DateFilter": _date_filter, "BooleanFilter": _boolean_filter, "IpFilter": _ip_filter,
}


# ---- sorting -------------------------------------------------------------------------------------------

SORTABLE_KINDS = {"StringFilter", "NumberFilter", "DateFilter", "BooleanFilter"}
DEFAULT_SORT = ({"Field": "UpdatedAt", "SortOrder": "desc"},)


def resolve_sort_field(field: Any) -> tuple[str, str]:
    """(path, kind) for a SortCriteria Field: a filter name or its single-valued ASFF path."""
    by_path = {path: name for name, path in FILTER_PATHS.items()}
    name = by_path.get(field, field) if isinstance(field, str) else None
    path = FILTER_PATHS.get(name or "")
    if name is None or path is None or "[]" in path or filter_kind(name) not in SORTABLE_KINDS:
        raise invalid_input(f"SortCriteria: cannot sort by {field!r}")
    return path, filter_kind(name)


def sort_values(doc: Mapping[str, Any], fields: Iterable[tuple[str, str]]) -> list[Any]:
    """JSON-safe sort values of one finding (None when missing; dates as epoch seconds)."""
    out: list[Any] = []
    for path, kind in fields:
        found = values_at(doc, path)
        value = found[0] if found else None
        if kind == "DateFilter":
            moment = parse_timestamp(value) if isinstance(value, str) else None
            value = moment.timestamp() if moment else None
        elif kind == "NumberFilter":
            value = float(value) if isinstance(value, int | float) else None
        elif kind == "BooleanFilter":
            value = int(value) if isinstance(value, bool) else None
        elif value is not None:
            value = str(value)
        out.append(value)
    return out


def compare_keys(a: list[Any], b: list[Any], descending: list[bool]) -> int:
    """Order two sort keys; missing values sort last in either direction; extra items are tie-breakers."""
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x == y:
            continue
        if x is None or y is None:
            return 1 if x is None else -1
        less = x < y
        if i < len(descending) and descending[i]:
            less = not less
        return -1 if less else 1
    return 0
