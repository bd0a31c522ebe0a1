"""The shared ledger: one DynamoDB table that several sh2jira replicas use at once.

Why conditional writes everywhere it matters: two replicas (or a replica whose lease ran out under a long pause)
must never both create an issue for one finding, nor overwrite each other's newer state. Every entry carries a
revision `rev`; this object remembers the revision it last read or wrote for each key, and every `put` is
conditional on it (`attribute_not_exists` for a key it saw absent). A create intent is therefore written only if
nobody recorded the finding since this replica planned it, and the POST follows only a written intent. A write
that loses raises `LedgerConflict` (the cycle stops, nothing of the plan is sent) after the revisions are read
again, so the next cycle plans from what the other writer left. Link-back bookkeeping (`linkback_done`) is
conditional on the issue and state, as in SQLite, and does not count as a revision: the background link-back
writer must not make the main loop's writes fail. Cursors and retry-queue items are plain writes: only the lease
holder writes them, and a cursor that goes back only makes a page read again.

Batching: BatchGetItem (100, strongly consistent) for every read of entries, TransactWriteItems (100) for
conditional puts of several entries, PutItem for one, BatchWriteItem (25) for deletes, retries and imports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from ..lease import LeaseHeld
from ..ledger import Entry, RetryItem, one_per_issue
from .dynamo_codec import CURSOR, ENTRY, LEASE_PK, RETRY, entry_item, entry_of, retry_item, retry_of
from .dynamo_schema import TTL_ATTRIBUTE

log = logging.getLogger(__name__)

GET_BATCH, TRANSACT_BATCH, WRITE_BATCH = 100, 100, 25
LEASE_KEEP_SECONDS = 86400  # a lease nobody renews is deleted by DynamoDB's TTL a day after it expired


class LedgerConflict(LeaseHeld):
    """Another writer changed these entries since this replica read them: stop before sending anything."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"another writer changed {len(keys)} ledger entr{'y' if len(keys) == 1 else 'ies'} "
                         f"({', '.join(keys[:3])}) under this one")
        self.keys = keys


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class DynamoLedger:
    """The `Ledger` protocol on one DynamoDB table (see dynamo_schema for its layout)."""

    def __init__(self, client: Any, table: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.table = table
        self.sleep = sleep  # back-off for unprocessed batch items (tests inject their own)
        self._rev: dict[str, int] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    # -- revisions -------------------------------------------------------------------------------------------
    def _seen(self, key: str, rev: int, *, exact: bool = False) -> None:
        with self._lock:
            self._rev[key] = rev if exact else max(rev, self._rev.get(key, 0))

    # -- reads -----------------------------------------------------------------------------------------------
    def _batch_get(self, pks: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        pks = list(dict.fromkeys(pks))
        for i in range(0, len(pks), GET_BATCH):
            request: dict[str, Any] = {self.table: {"Keys": [{"pk": {"S": pk}} for pk in pks[i:i + GET_BATCH]],
                                                    "ConsistentRead": True}}
            tries = 0
            while request:
                answer = self.client.batch_get_item(RequestItems=request)
                found.extend(answer.get("Responses", {}).get(self.table, []))
                request = answer.get("UnprocessedKeys") or {}
                if request:
                    tries += 1
                    self.sleep(min(2.0, 0.05 * 2 ** tries))
        return found

    def _entries(self, keys: Iterable[str], *, absent_is_known: bool = True) -> dict[str, Entry]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, Entry] = {}
        for item in self._batch_get([ENTRY + k for k in keys]):
            entry, rev = entry_of(item)
            self._seen(entry.key, rev)
            out[entry.key] = entry
        if absent_is_known:
            for k in keys:
                if k not in out:
                    self._seen(k, 0, exact=True)
        return out

    def _query_keys(self, index: str, condition: str, values: dict[str, Any], names: dict[str, str] | None = None,
                    limit: int | None = None) -> list[str]:
        """Entry keys from a keys-only index, all pages (or up to `limit`)."""
        args: dict[str, Any] = {"TableName": self.table, "IndexName": index, "KeyConditionExpression": condition,
                                "ExpressionAttributeValues": values}
        if names:
            args["ExpressionAttributeNames"] = names
        keys: list[str] = []
        while True:
            if limit is not None:
                args["Limit"] = limit - len(keys)
            page = self.client.query(**args)
            keys.extend(str(i["pk"]["S"])[len(ENTRY):] for i in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start or (limit is not None and len(keys) >= limit):
                return keys
            args["ExclusiveStartKey"] = start

    def _lookup(self, index: str, attribute: str, wanted: list[str]) -> list[str]:
        """Keys of the entries whose `attribute` is one of `wanted` (one Query each, a few at a time)."""
        if not wanted:
            return []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sh2jira-ddb")

        def one(v: str) -> list[str]:
            return self._query_keys(index, "#a = :v", {":v": {"S": v}}, {"#a": attribute})

        return [k for keys in self._pool.map(one, wanted) for k in keys]

    def get(self, keys: Iterable[str]) -> dict[str, Entry]:
        return self._entries(keys)

    def by_alias(self, aliases: Iterable[str]) -> dict[str, Entry]:
        wanted = list(dict.fromkeys(a for a in aliases if a))
        found: dict[str, Entry] = {}
        for e in sorted(self._entries(self._lookup("by_alias", "alias", wanted), absent_is_known=False).values(),
                        key=lambda e: e.key):
            if e.alias in wanted and (e.alias not in found or (e.issue_key and not found[e.alias].issue_key)):
                found[e.alias] = e  # several findings can share an alias over time; the one with an issue wins
        return found

    def by_issue(self, issue_keys: Iterable[str]) -> dict[str, Entry]:
        wanted = list(dict.fromkeys(k for k in issue_keys if k))
        entries = self._entries(self._lookup("by_issue", "issue_key", wanted), absent_is_known=False)
        return one_per_issue(e for e in entries.values() if e.issue_key in wanted)

    def in_state(self, state: str) -> list[Entry]:
        keys = self._query_keys("by_state", "#s = :s", {":s": {"S": state}}, {"#s": "state"})
        entries = self._entries(keys, absent_is_known=False)
        return [entries[k] for k in keys if k in entries and entries[k].state == state]

    def pending_linkbacks(self, after: str = "", limit: int = 1000) -> list[Entry]:
        """Pending link-backs in key order after `after` (the sparse `linkback` index is ordered by key)."""
        keys = self.pending_linkback_keys(after, limit)
        entries = self._entries(keys, absent_is_known=False)
        return [entries[k] for k in sorted(keys) if k in entries and entries[k].linkback_pending]

    def pending_linkback_keys(self, after: str = "", limit: int = 1000) -> list[str]:
        """The keys alone, from the keys-only index: no item is read."""
        if after:
            return self._query_keys("linkback", "lbq = :one AND #k > :after", {":one": {"S": "1"},
                                    ":after": {"S": after}}, {"#k": "key"}, limit=limit)
        # an empty string cannot be compared with an index key
        return self._query_keys("linkback", "lbq = :one", {":one": {"S": "1"}}, limit=limit)

    def count(self) -> int:
        return self._count("by_state")

    def pending_linkback_count(self) -> int:
        return self._count("linkback")

    def _count(self, index: str) -> int:
        args: dict[str, Any] = {"TableName": self.table, "IndexName": index, "Select": "COUNT"}
        total = 0
        while True:
            page = self.client.scan(**args)
            total += int(page.get("Count", 0))
            if not page.get("LastEvaluatedKey"):
                return total
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- conditional writes of entries --------------------------------------------------------------------------
    def put(self, entries: Iterable[Entry]) -> None:
        latest = {e.key: e for e in entries}  # the last write of a key wins, as with SQLite's INSERT OR REPLACE
        if not latest:
            return
        with self._lock:
            unknown = [k for k in latest if k not in self._rev]
        if unknown:  # written without being read here first (an import, an adoption): learn the revision now
            self._entries(unknown)
        items = list(latest.values())
        for i in range(0, len(items), TRANSACT_BATCH):
            self._put_chunk(items[i:i + TRANSACT_BATCH])

    def _put_chunk(self, chunk: list[Entry]) -> None:
        writes = []
        for e in chunk:
            with self._lock:
                rev = self._rev.get(e.key, 0)
            put: dict[str, Any] = {"TableName": self.table, "Item": entry_item(e, rev + 1)}
            if rev:
                put["ConditionExpression"] = "rev = :rev"
                put["ExpressionAttributeValues"] = {":rev": {"N": str(rev)}}
            else:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            writes.append((e.key, rev, put))
        for attempt in range(8):
            try:
                if len(writes) == 1:
                    self.client.put_item(**writes[0][2])
                else:
                    self.client.transact_write_items(TransactItems=[{"Put": w[2]} for w in writes])
                break
            except ClientError as exc:
                code = _code(exc)
                if code == "ConditionalCheckFailedException":
                    self._conflict([writes[0][0]])
                if code != "TransactionCanceledException":
                    raise
                reasons = [str(r.get("Code", "")) for r in exc.response.get("CancellationReasons", [])]
                lost = [w[0] for w, r in zip(writes, reasons, strict=False) if r == "ConditionalCheckFailed"]
                if lost:
                    self._conflict(lost)
                if attempt == 7:
                    raise  # a transaction that conflicted with others eight times in a row: let the cycle fail
                self.sleep(min(1.0, 0.02 * 2 ** attempt))  # TransactionConflict: another write in flight
        for key, rev, _ in writes:
            self._seen(key, rev + 1)

    def _conflict(self, keys: list[str]) -> None:
        with self._lock:
            for k in keys:
                self._rev.pop(k, None)
        self._entries(keys)  # the revisions the other writer left, for the next plan
        log.warning("ledger entries changed by another writer: %s; stopping this cycle", ", ".join(keys[:5]))
        raise LedgerConflict(keys)

    def delete(self, keys: Iterable[str]) -> None:
        keys = list(dict.fromkeys(keys))
        self._batch_write([{"DeleteRequest": {"Key": {"pk": {"S": ENTRY + k}}}} for k in keys])
        for k in keys:
            self._seen(k, 0, exact=True)

    def linkback_done(self, done: Iterable[tuple[str, str, str]]) -> None:
        """Mark (key, issue_key, state) written, only where the entry still names that issue in that state."""
        for key, issue, state in done:
            try:
                self.client.update_item(
                    TableName=self.table, Key={"pk": {"S": ENTRY + key}},
                    UpdateExpression="SET linkback_pending = :f, linkback_issue = :i, attempts = :z REMOVE lbq",
                    ConditionExpression="issue_key = :i AND #s = :s", ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues={":f": {"BOOL": False}, ":i": {"S": issue}, ":z": {"N": "0"},
                                               ":s": {"S": state}})
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise

    def linkback_failed(self, keys: Iterable[str], give_up_after: int) -> list[str]:
        given_up = []
        for key in dict.fromkeys(keys):
            pk = {"pk": {"S": ENTRY + key}}
            try:
                answer = self.client.update_item(
                    TableName=self.table, Key=pk, UpdateExpression="ADD attempts :one",
                    ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":one": {"N": "1"}},
                    ReturnValues="UPDATED_NEW")
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                continue
            if int(answer["Attributes"]["attempts"]["N"]) >= give_up_after:
                self.client.update_item(TableName=self.table, Key=pk,
                                        UpdateExpression="SET linkback_pending = :f, attempts = :z REMOVE lbq",
                                        ExpressionAttributeValues={":f": {"BOOL": False}, ":z": {"N": "0"}})
                given_up.append(key)
        return given_up

    # -- cursors and the lease -----------------------------------------------------------------------------------
    def cursor(self, name: str) -> str | None:
        item = self.client.get_item(TableName=self.table, Key={"pk": {"S": CURSOR + name}},
                                    ConsistentRead=True).get("Item")
        return str(item["value"]["S"]) if item else None

    def set_cursor(self, name: str, value: str) -> None:
        self.client.put_item(TableName=self.table, Item={"pk": {"S": CURSOR + name}, "name": {"S": name},
                                                         "value": {"S": value}})

    def acquire_lease(self, holder: str, ttl: float, now: float, is_stale: Callable[[str], bool]) -> str | None:
        """Take or renew the lease with one conditional put: free, ours, or expired (by the caller's clock)."""
        item = {"pk": {"S": LEASE_PK}, "holder": {"S": holder}, "expires": {"N": repr(now + ttl)},
                TTL_ATTRIBUTE: {"N": str(int(now + ttl + LEASE_KEEP_SECONDS))}}
        try:
            self.client.put_item(TableName=self.table, Item=item,
                                 ConditionExpression="attribute_not_exists(pk) OR holder = :h OR expires <= :now",
                                 ExpressionAttributeValues={":h": {"S": holder}, ":now": {"N": repr(now)}})
            return None
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
        current = self.client.get_item(TableName=self.table, Key={"pk": {"S": LEASE_PK}},
                                       ConsistentRead=True).get("Item")
        if current is None:
            return self.acquire_lease(holder, ttl, now, is_stale)  # released in between
        other = str(current["holder"]["S"])
        if other == holder or not is_stale(other):
            return None if other == holder else other
        try:  # a killed process on this host: take its lease over, unless someone else just did
            self.client.put_item(TableName=self.table, Item=item,
                                 ConditionExpression="holder = :other AND expires = :exp",
                                 ExpressionAttributeValues={":other": {"S": other}, ":exp": current["expires"]})
            return None
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return other

    def release_lease(self, holder: str) -> None:
        try:
            self.client.delete_item(TableName=self.table, Key={"pk": {"S": LEASE_PK}},
                                    ConditionExpression="holder = :h", ExpressionAttributeValues={":h": {"S": holder}})
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise

    # -- the retry queue -------------------------------------------------------------------------------------------
    def put_retries(self, items: Iterable[RetryItem]) -> None:
        latest = {i.item: i for i in items}
        self._batch_write([{"PutRequest": {"Item": retry_item(i)}} for i in latest.values()])

    def _queue_empty(self) -> bool:
        """One keys-only page of one row: the usual case (nothing waits) costs half a read unit, not a read or a
        delete per finding."""
        page = self.client.query(TableName=self.table, IndexName="retries", KeyConditionExpression="rq = :one",
                                 ExpressionAttributeValues={":one": {"S": "1"}}, Limit=1, Select="COUNT")
        return not page.get("Count")

    def retries(self, items: Iterable[str]) -> dict[str, RetryItem]:
        wanted = list(items)
        if not wanted or self._queue_empty():
            return {}
        found = (retry_of(i) for i in self._batch_get([RETRY + i for i in wanted]))
        return {r.item: r for r in found}

    def _queued(self, condition: str, values: dict[str, Any], limit: int | None = None) -> list[RetryItem]:
        args: dict[str, Any] = {"TableName": self.table, "IndexName": "retries", "KeyConditionExpression": condition,
                                "ExpressionAttributeValues": {":one": {"S": "1"}, **values}}
        out: list[RetryItem] = []
        while True:
            if limit is not None:
                args["Limit"] = limit - len(out)
            page = self.client.query(**args)
            out.extend(retry_of(i) for i in page.get("Items", []))
            if not page.get("LastEvaluatedKey") or (limit is not None and len(out) >= limit):
                return out
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def due_retries(self, now: float, limit: int = 1000) -> list[RetryItem]:
        due = self._queued("rq = :one AND r_next_try <= :now", {":now": {"N": repr(float(now))}}, limit)
        return sorted(due, key=lambda r: (r.next_try, r.item))

    def drop_retries(self, items: Iterable[str]) -> None:
        items = list(items)
        if not items or self._queue_empty():
            return
        self._batch_write([{"DeleteRequest": {"Key": {"pk": {"S": RETRY + i}}}} for i in dict.fromkeys(items)])

    def stuck_items(self) -> list[RetryItem]:
        return sorted(self._queued("rq = :one", {}), key=lambda r: (r.first_failed, r.item))

    # -- bulk (import / export) ----------------------------------------------------------------------------------
    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for i in range(0, len(requests), WRITE_BATCH):
            pending: dict[str, Any] = {self.table: requests[i:i + WRITE_BATCH]}
            tries = 0
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if pending:
                    tries += 1
                    self.sleep(min(2.0, 0.05 * 2 ** tries))

    def load(self, entries: Iterable[Entry]) -> int:
        """Write entries as they are (BatchWriteItem, no condition): for `ledger import` into an empty table."""
        requests = [{"PutRequest": {"Item": entry_item(e, 1)}} for e in {e.key: e for e in entries}.values()]
        self._batch_write(requests)
        return len(requests)

    def scan_all(self) -> Iterator[dict[str, Any]]:
        """Every item of the table (consistent), for `ledger export`."""
        args: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.client.scan(**args)
            yield from page.get("Items", [])
            if not page.get("LastEvaluatedKey"):
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


def dynamodb_client(region: str | None = None, endpoint_url: str | None = None,
                    session: Any = None) -> Any:
    """A DynamoDB client: boto3's credential chain; `endpoint_url` for a local stand-in (moto, DynamoDB Local)."""
    import boto3
    from botocore.config import Config as BotoConfig

    session = session or boto3.session.Session()
    return session.client("dynamodb", region_name=region, endpoint_url=endpoint_url,
                          config=BotoConfig(retries={"mode": "standard", "max_attempts": 8},
                                            connect_timeout=5, read_timeout=20))
