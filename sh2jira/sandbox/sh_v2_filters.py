"""GetFindingsV2's OCSF composite filters, compiled to a predicate over stored OCSF findings.

Semantics as botocore's model documents them: `Filters.CompositeFilters` (at most 10) are combined with
`CompositeOperator` (AND unless OR); inside one CompositeFilter every String/Date/Boolean/Number/Map/Ip filter
and every NestedCompositeFilter is combined with its `Operator` (AND unless OR), at most 20 filters of each
type. A dotted field name reaches into lists (`resources.type` is any resource's type). A negative comparison
(NOT_EQUALS, PREFIX_NOT_EQUALS, NOT_CONTAINS) holds when no value matches, so a missing field passes it.
Field names must be the model's enum values (`OcsfStringField`, ...): anything else is a ValidationException.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sh2jira.finding import parse_time
from sh2jira.sandbox import sh_model
from sh2jira.sandbox.sh_errors import ServiceError

MAX_COMPOSITE_FILTERS = 10
MAX_FILTERS_PER_TYPE = 20
Predicate = Callable[[Mapping[str, Any]], bool]
_TYPES = {"StringFilters": "OcsfStringField", "DateFilters": "OcsfDateField", "BooleanFilters": "OcsfBooleanField",
          "NumberFilters": "OcsfNumberField", "MapFilters": "OcsfMapField", "IpFilters": "OcsfIpField"}


def validation(message: str) -> ServiceError:
    """The 400 the V2 operations answer for a malformed request."""
    return ServiceError("ValidationException", message, 400)


def values_at(doc: Any, path: str) -> list[Any]:
    """Every value at a dotted path, descending into lists."""
    nodes = [doc]
    for part in path.split("."):
        nxt: list[Any] = []
        for node in nodes:
            if isinstance(node, list):
                node_items = node
            else:
                node_items = [node]
            for item in node_items:
                if isinstance(item, Mapping) and part in item:
                    nxt.append(item[part])
        nodes = nxt
    out: list[Any] = []
    for node in nodes:
        out.extend(node if isinstance(node, list) else [node])
    return [v for v in out if v is not None]


parse_when = parse_time  # the stand-in reads timestamps as the service does: any precision


def compile_v2_filters(filters: Mapping[str, Any] | None, now: datetime) -> Predicate:
    """The predicate for GetFindingsV2's `Filters` (None or empty: every finding)."""
    if not filters:
        return lambda doc: True
    composites = filters.get("CompositeFilters") or []
    if len(composites) > MAX_COMPOSITE_FILTERS:
        raise validation(f"Filters.CompositeFilters: at most {MAX_COMPOSITE_FILTERS}, got {len(composites)}")
    parts = [_composite(c, now, f"CompositeFilters[{i}]") for i, c in enumerate(composites)]
    return _combine(parts, filters.get("CompositeOperator") or "AND")


def _combine(parts: list[Predicate], operator: str) -> Predicate:
    if not parts:
        return lambda doc: True
    if operator == "OR":
        return lambda doc: any(p(doc) for p in parts)
    return lambda doc: all(p(doc) for p in parts)


def _composite(composite: Mapping[str, Any], now: datetime, where: str) -> Predicate:
    parts: list[Predicate] = []
    for kind, enum in _TYPES.items():
        items = composite.get(kind) or []
        if len(items) > MAX_FILTERS_PER_TYPE:
            raise validation(f"{where}.{kind}: at most {MAX_FILTERS_PER_TYPE} filters, got {len(items)}")
        allowed = set(sh_model.shape(enum).enum)
        for j, item in enumerate(items):
            field = item.get("FieldName")
            if field not in allowed:
                raise validation(f"{where}.{kind}[{j}].FieldName {field!r} is not a valid {enum}")
            parts.append(_leaf(kind, field, item.get("Filter") or {}, now, f"{where}.{kind}[{j}]"))
    nested = composite.get("NestedCompositeFilters") or []
    parts += [_composite(n, now, f"{where}.NestedCompositeFilters[{k}]") for k, n in enumerate(nested)]
    return _combine(parts, composite.get("Operator") or "AND")


def _leaf(kind: str, field: str, spec: Mapping[str, Any], now: datetime, where: str) -> Predicate:
    if kind == "StringFilters":
        return _string(field, spec, where)
    if kind == "DateFilters":
        return _date(field, spec, now, where)
    if kind == "NumberFilters":
        return _number(field, spec)
    if kind == "BooleanFilters":
        wanted = spec.get("Value")
        return lambda doc: wanted in values_at(doc, field)
    if kind == "MapFilters":
        return _map(field, spec)
    cidr = ipaddress.ip_network(str(spec.get("Cidr")), strict=False)

    def in_network(doc: Mapping[str, Any]) -> bool:
        for value in values_at(doc, field):
            try:
                if ipaddress.ip_address(str(value)) in cidr:
                    return True
            except ValueError:
                continue
        return False
    return in_network


def _string(field: str, spec: Mapping[str, Any], where: str) -> Predicate:
    value, comparison = spec.get("Value"), spec.get("Comparison")
    if not isinstance(value, str) or not value.strip():
        raise validation(f"{where}.Filter.Value must be a non-empty string")
    tests: dict[str, Callable[[str], bool]] = {
        "EQUALS": lambda v: v == value, "NOT_EQUALS": lambda v: v == value,
        "PREFIX": lambda v: v.startswith(value), "PREFIX_NOT_EQUALS": lambda v: v.startswith(value),
        "CONTAINS": lambda v: value in v, "NOT_CONTAINS": lambda v: value in v,
        "CONTAINS_WORD": lambda v: re.search(rf"\b{re.escape(value)}\b", v, re.IGNORECASE) is not None,
    }
    test = tests.get(str(comparison))
    if test is None:
        raise validation(f"{where}.Filter.Comparison {comparison!r} is not valid")
    negative = str(comparison) in ("NOT_EQUALS", "PREFIX_NOT_EQUALS", "NOT_CONTAINS")

    def check(doc: Mapping[str, Any]) -> bool:
        hit = any(test(str(v)) for v in values_at(doc, field))
        return not hit if negative else hit
    return check


def _date(field: str, spec: Mapping[str, Any], now: datetime, where: str) -> Predicate:
    start = parse_when(spec["Start"]) if spec.get("Start") else None
    end = parse_when(spec["End"]) if spec.get("End") else None
    if (spec.get("Start") and start is None) or (spec.get("End") and end is None):
        raise validation(f"{where}.Filter: Start and End must be ISO-8601 timestamps")
    span = spec.get("DateRange")
    if span:
        days = timedelta(days=int(span.get("Value", 0)))
        if span.get("Comparison", "WITHIN") == "OLDER_THAN":
            end = now - days
        else:
            start = now - days
    if start is None and end is None:
        raise validation(f"{where}.Filter needs Start, End or DateRange")

    def check(doc: Mapping[str, Any]) -> bool:
        for value in values_at(doc, field):
            moment = parse_when(str(value))
            if moment and (start is None or moment >= start) and (end is None or moment <= end):
                return True
        return False
    return check


def _number(field: str, spec: Mapping[str, Any]) -> Predicate:
    bounds = {k: float(v) for k, v in spec.items() if k in ("Gte", "Lte", "Eq", "Gt", "Lt")}

    def ok(v: float) -> bool:
        return all({"Gte": v >= b, "Lte": v <= b, "Eq": v == b, "Gt": v > b, "Lt": v < b}[k]
                   for k, b in bounds.items())

    def check(doc: Mapping[str, Any]) -> bool:
        return any(ok(float(v)) for v in values_at(doc, field)
                   if isinstance(v, int | float) and not isinstance(v, bool))
    return check


def _map(field: str, spec: Mapping[str, Any]) -> Predicate:
    key, value, comparison = spec.get("Key"), spec.get("Value"), spec.get("Comparison", "EQUALS")

    def pairs(doc: Mapping[str, Any]) -> list[str]:
        out = []
        for node in values_at(doc, field):
            if isinstance(node, Mapping) and "name" in node:
                if node.get("name") == key:
                    out.append(str(node.get("value", "")))
            elif isinstance(node, Mapping) and key in node:
                out.append(str(node[key]))
        return out

    def check(doc: Mapping[str, Any]) -> bool:
        found = pairs(doc)
        if comparison == "EQUALS":
            return value in found
        if comparison == "CONTAINS":
            return any(str(value) in v for v in found)
        if comparison == "NOT_EQUALS":
            return value not in found
        return not any(str(value) in v for v in found)
    return check


def sort_value(doc: Mapping[str, Any], field: str) -> Any:
    """The value a finding sorts by for one SortCriteria field (the first value of a list; None sorts last)."""
    found = values_at(doc, field)
    if not found:
        return None
    value = found[0]
    return value if isinstance(value, int | float | str) and not isinstance(value, bool) else str(value)
