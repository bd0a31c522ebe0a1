"""Ledger records ↔ DynamoDB items (the low-level attribute-value form, so no float/Decimal surprises).

An entry's index keys (`alias`, `issue_key`, `lbq`) are left out when empty: DynamoDB refuses an empty string as an
index key, and a missing attribute is what keeps an index sparse. `rev` counts the entry's writes; conditional
writes compare it (see dynamodb.py).
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from ..ledger import Entry, RetryItem

ENTRY, RETRY, CURSOR = "e#", "r#", "c#"
LEASE_PK = "lease#sync"
_ENTRY_FIELDS = {f.name: f.type for f in fields(Entry)}
_RETRY_FIELDS = {f.name: f.type for f in fields(RetryItem)}
_SPARSE = ("alias", "issue_key")


def value(v: object) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"BOOL": v}
    if isinstance(v, int | float):
        return {"N": repr(v) if isinstance(v, float) else str(v)}
    return {"S": str(v)}


def plain(av: dict[str, Any]) -> object:
    if "BOOL" in av:
        return bool(av["BOOL"])
    if "N" in av:
        text = str(av["N"])
        return float(text) if any(c in text for c in ".eE") else int(text)
    return av.get("S", "")


def entry_item(e: Entry, rev: int) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": ENTRY + e.key}, "rev": {"N": str(rev)}}
    for name in _ENTRY_FIELDS:
        v = getattr(e, name)
        if name in _SPARSE and not v:
            continue
        item[name] = {"S": json.dumps(list(v))} if name == "labels" else value(v)
    if e.linkback_pending:
        item["lbq"] = {"S": "1"}
    return item


def entry_of(item: dict[str, Any]) -> tuple[Entry, int]:
    d: dict[str, Any] = {n: plain(item[n]) for n in _ENTRY_FIELDS if n in item}
    d["labels"] = tuple(json.loads(str(d.get("labels") or "[]")))
    d["changed_at"] = float(d.get("changed_at", 0.0))
    d["attempts"] = int(d.get("attempts", 0))
    return Entry(**d), int(str(item.get("rev", {}).get("N", "0")))


def retry_item(r: RetryItem) -> dict[str, Any]:
    """Retry fields carry an `r_` prefix so that none of them (`key`, `issue_key`) lands in an entry index."""
    item: dict[str, Any] = {"pk": {"S": RETRY + r.item}, "rq": {"S": "1"}}
    for name in _RETRY_FIELDS:
        item["r_" + name] = value(getattr(r, name))
    item["r_next_try"] = {"N": repr(float(r.next_try))}
    item["r_first_failed"] = {"N": repr(float(r.first_failed))}
    return item


def retry_of(item: dict[str, Any]) -> RetryItem:
    d: dict[str, Any] = {n: plain(item["r_" + n]) for n in _RETRY_FIELDS if "r_" + n in item}
    d["attempts"] = int(d.get("attempts", 1))
    d["next_try"] = float(d.get("next_try", 0.0))
    d["first_failed"] = float(d.get("first_failed", 0.0))
    return RetryItem(**d)
