"""GetFindings paging: opaque NextTokens bound to their query, positioned by sort key (keyset paging).

A token holds a digest of the query (filters, sort, caller, region) and the sort key of the last finding
returned, tie-broken by ProductArn, Id, account and region. The next page is "everything after that key"
in the current data, so findings that change or disappear between pages shift nothing: a caller that pages
through WorkflowStatus=NEW while setting each page to NOTIFIED still sees every finding exactly once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sh2jira.sandbox.sh_errors import invalid_input
from sh2jira.sandbox.sh_filters import compare_keys

T = TypeVar("T")


def query_digest(*parts: Any) -> str:
    raw = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


# Leading bytes that keep the token from decoding as JSON: botocore's paginator reads base64-JSON
# StartingTokens as its own resume tokens and would take ours apart.
_MAGIC = b"\x00sh1"


def encode_token(digest: str, after: list[Any]) -> str:
    raw = json.dumps({"v": 1, "q": digest, "a": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(_MAGIC + raw.encode()).decode()


def decode_token(token: str, digest: str, key_length: int) -> list[Any]:
    """The position a token encodes; InvalidInputException if it is garbled or from another query."""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        if not raw.startswith(_MAGIC):
            raise ValueError("not a sandbox token")
        data = json.loads(raw[len(_MAGIC):])
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise invalid_input("NextToken is invalid") from exc
    if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("a"), list):
        raise invalid_input("NextToken is invalid")
    if data.get("q") != digest:
        raise invalid_input("NextToken does not belong to this query: filters and sort criteria must "
                            "not change between pages")
    if len(data["a"]) != key_length:
        raise invalid_input("NextToken is invalid")
    return list(data["a"])


def page(items: Sequence[T], key: Callable[[T], list[Any]], descending: list[bool], after: list[Any] | None,
         limit: int) -> tuple[list[T], list[Any] | None]:
    """One page of `items` in key order after `after`, and the key to continue from (None at the end)."""
    keyed = [(key(item), item) for item in items]

    def order(a: tuple[list[Any], T], b: tuple[list[Any], T]) -> int:
        return compare_keys(a[0], b[0], descending)
    keyed.sort(key=functools.cmp_to_key(order))
    if after is not None:
        keyed = [pair for pair in keyed if compare_keys(pair[0], after, descending) > 0]
    chunk = keyed[:limit]
    next_after = chunk[-1][0] if len(keyed) > limit else None
    return [item for _, item in chunk], next_after
