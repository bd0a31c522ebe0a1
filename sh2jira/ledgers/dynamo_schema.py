"""The DynamoDB ledger's table: one table, one partition key, four sparse keys-only indexes.

Items are told apart by the prefix of `pk`: `e#<digest>` a tracked finding, `r#<item>` a retry-queue item,
`c#<name>` a cursor, `lease#sync` the single-writer lease. Every index is sparse (an attribute that is absent
puts no row in it) and, except the retry queue's, keys-only: an entry's content is always read from the table
with a strongly consistent BatchGetItem, so an index's lag can hide a row for a moment but never serve a stale
one, and an index row is written only when its key attribute changes (cheap writes). `ledger init` (and the
CloudFormation / Terraform in deploy/) create exactly this.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

PK = "pk"
TTL_ATTRIBUTE = "expires_at"  # epoch seconds; only the lease carries it (a deleted deployment's lease goes away)

# index name → (partition key, sort key or "", sort key type, projection)
INDEXES: dict[str, tuple[str, str, str, str]] = {
    "by_state": ("state", "key", "S", "KEYS_ONLY"),  # in_state: creating / failed are read every cycle
    "by_alias": ("alias", "", "", "KEYS_ONLY"),  # consolidated-controls switch (set only when non-empty)
    "by_issue": ("issue_key", "", "", "KEYS_ONLY"),  # Jira-side changes → their entries (set only when known)
    "linkback": ("lbq", "key", "S", "KEYS_ONLY"),  # pending link-backs in key order (lbq present only then)
    "retries": ("rq", "r_next_try", "N", "ALL"),  # the retry queue by next try (rq present on retry items only)
}


def table_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments: on-demand capacity (the load is bursty: a backfill, then quiet cycles)."""
    attrs: dict[str, str] = {PK: "S"}
    indexes = []
    for index, (hash_key, range_key, range_type, projection) in INDEXES.items():
        attrs[hash_key] = "S"
        schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            attrs[range_key] = range_type
            schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        indexes.append({"IndexName": index, "KeySchema": schema, "Projection": {"ProjectionType": projection}})
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in sorted(attrs.items())],
        "GlobalSecondaryIndexes": indexes,
    }


def create_table(client: Any, name: str, *, wait: bool = True, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Create the table and switch TTL on; False when it already existed (then only TTL is checked)."""
    created = True
    try:
        client.create_table(**table_definition(name))
    except client.exceptions.ResourceInUseException:
        created = False
    for _ in range(300 if wait else 0):  # a new table takes seconds to become ACTIVE (TTL needs it so)
        if client.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE":
            break
        sleep(1.0)
    ttl = client.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": TTL_ATTRIBUTE})
    return created
