"""The new Security Hub's findings in the stand-in: GetFindingsV2 and BatchUpdateFindingsV2 over OCSF documents.

What is implemented, from botocore's model and FACTS.md:
- GetFindingsV2: composite filters (sh_v2_filters), SortCriteria on any OCSF path, MaxResults 1..100, NextToken
  bound to its query (keyset paging, as GetFindings: findings that change between pages shift nothing).
- BatchUpdateFindingsV2: `MetadataUids` or `FindingIdentifiers` (not both, at most 100), at least one of
  `Comment` (1..512 characters), `SeverityId` ([0..6, 99]) and `StatusId` ([0..5, 99]); the string siblings
  (`severity`, `status`) follow the ids. Findings it cannot find come back in `UnprocessedFindings` as
  ResourceNotFoundException. It never moves `finding_info.modified_time(_dt)` or `time(_dt)`.
- Retention: a finding whose `activity_name` is Close is deleted 14 days after its `modified_time_dt`, any other
  after 90 days (checked on every call, against the app's clock).
- A provider's re-import (`load_v2` again with the same identity) replaces the finding but keeps the customer's
  `comment` and, once a customer set it, `status_id`. The new Security Hub documents no automatic status reset;
  the stand-in applies CSPM's documented rule, which is what "New on recurrence" needs: In Progress or Resolved
  goes back to New when the activity goes from Close to Create/Update or the compliance status from Pass to
  anything else. Suppressed stays.
Every stored finding emits one "Findings Imported V2" event (one finding per event, resources[0] = metadata.uid).
"""

from __future__ import annotations

import copy
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sh2jira.sandbox.sh_paging import decode_token, encode_token, page, query_digest
from sh2jira.sandbox.sh_v2_filters import compile_v2_filters, parse_when, sort_value, validation

MAX_UPDATE = 100
MAX_COMMENT = 512
SEVERITY_NAMES = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal",
                  99: "Other"}
STATUS_NAMES = {0: "Unknown", 1: "New", 2: "In Progress", 3: "Suppressed", 4: "Resolved", 5: "Archived", 99: "Other"}
CLOSED_RETENTION = timedelta(days=14)
ACTIVE_RETENTION = timedelta(days=90)
DEFAULT_SORT = [{"Field": "finding_info.modified_time_dt", "SortOrder": "desc"}]
_RESETTABLE = (2, 4)


@dataclass
class StoredV2:
    doc: dict[str, Any]
    account: str
    region: str
    customer_status: bool = False
    customer: dict[str, Any] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return str(self.doc["metadata"]["uid"])

    def identifier(self) -> dict[str, str]:
        return {"CloudAccountUid": self.account, "FindingInfoUid": str(self.doc["finding_info"]["uid"]),
                "MetadataProductUid": str(self.doc["metadata"]["product"]["uid"])}


def _metadata_uid(doc: dict[str, Any]) -> str:
    raw = "\n".join([str(doc["finding_info"]["uid"]), str(doc["cloud"]["account"]["uid"]),
                     str(doc["metadata"]["product"]["uid"])])
    return hashlib.sha256(raw.encode()).hexdigest()


def _check_shape(doc: Any) -> str:
    """'' when the document has what the stand-in needs to store it, else the problem."""
    if not isinstance(doc, dict):
        return "a finding must be a JSON object"
    for path in (("finding_info", "uid"), ("metadata", "product", "uid"), ("cloud", "account", "uid")):
        node: Any = doc
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, str) or not node:
            return f"{'.'.join(path)} is missing"
    return ""


class V2Findings:
    """The OCSF store: (account, region) → metadata.uid → finding. Thread-safe."""

    def __init__(self, now: Callable[[], datetime], emit: Callable[[dict[str, Any]], None]) -> None:
        self._now = now
        self._emit = emit
        self._lock = threading.RLock()
        self._stores: dict[tuple[str, str], dict[str, StoredV2]] = {}

    def reset(self) -> None:
        with self._lock:
            self._stores.clear()

    # -- provider side and test controls -----------------------------------------------------------------------
    def load(self, findings: Iterable[Any], region: str | None = None) -> dict[str, Any]:
        """Store findings as their provider sends them; region from the argument or `cloud.region`."""
        result: dict[str, Any] = {"SuccessCount": 0, "FailedCount": 0, "FailedFindings": []}
        with self._lock:
            for raw in findings:
                problem = _check_shape(raw)
                if problem:
                    result["FailedCount"] += 1
                    result["FailedFindings"].append({"ErrorCode": "ValidationException", "ErrorMessage": problem})
                    continue
                doc = copy.deepcopy(raw)
                doc.setdefault("metadata", {}).setdefault("uid", _metadata_uid(doc))
                where = region or str((doc.get("cloud") or {}).get("region") or "us-east-1")
                doc.setdefault("cloud", {})["region"] = where
                account = str(doc["cloud"]["account"]["uid"])
                store = self._stores.setdefault((account, where), {})
                old = store.get(doc["metadata"]["uid"])
                if old is not None:
                    self._keep_customer(doc, old)
                stored = StoredV2(doc, account, where, old.customer_status if old else False,
                                  dict(old.customer) if old else {})
                store[stored.uid] = stored
                result["SuccessCount"] += 1
                self._emit_event(stored)
        return result

    @staticmethod
    def _keep_customer(doc: dict[str, Any], old: StoredV2) -> None:
        if "comment" in old.customer:
            doc["comment"] = old.customer["comment"]
        if not old.customer_status:
            return
        status_id = int(old.doc.get("status_id", 1))
        was_closed = str(old.doc.get("activity_name", "")).casefold() == "close"
        now_open = str(doc.get("activity_name", "")).casefold() != "close"
        old_pass = (old.doc.get("compliance") or {}).get("status_id") == 1
        new_pass = (doc.get("compliance") or {}).get("status_id") == 1
        if status_id in _RESETTABLE and ((was_closed and now_open) or (old_pass and not new_pass)):
            status_id = 1
        doc["status_id"], doc["status"] = status_id, STATUS_NAMES.get(status_id, "Other")

    def findings(self, account: str | None = None, region: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self.expire()
            return [copy.deepcopy(s.doc) for (acct, reg), store in self._stores.items()
                    if account in (None, acct) and region in (None, reg) for s in store.values()]

    def tamper(self, finding_uid: str, mutate: Callable[[dict[str, Any]], None]) -> int:
        """Change stored findings (by finding_info.uid or metadata.uid) in place; KeyError if none matches."""
        with self._lock:
            hits = [s for store in self._stores.values() for s in store.values()
                    if finding_uid in (s.uid, s.doc["finding_info"]["uid"])]
            if not hits:
                raise KeyError(f"no stored V2 finding {finding_uid!r}")
            for s in hits:
                mutate(s.doc)
            return len(hits)

    def expire(self) -> int:
        """Delete what Security Hub's retention deletes: closed findings after 14 days, others after 90."""
        now = self._now()
        gone = 0
        with self._lock:
            for store in self._stores.values():
                for uid, s in list(store.items()):
                    modified = parse_when(str((s.doc.get("finding_info") or {}).get("modified_time_dt") or ""))
                    closed = str(s.doc.get("activity_name", "")).casefold() == "close"
                    keep = CLOSED_RETENTION if closed else ACTIVE_RETENTION
                    if modified is not None and now - modified > keep:
                        del store[uid]
                        gone += 1
        return gone

    def _emit_event(self, stored: StoredV2) -> None:
        self._emit({"version": "0", "id": str(uuid.uuid4()), "detail-type": "Findings Imported V2",
                    "source": "aws.securityhub", "account": stored.account,
                    "time": self._now().strftime("%Y-%m-%dT%H:%M:%SZ"), "region": stored.region,
                    "resources": [stored.uid], "detail": {"findings": [copy.deepcopy(stored.doc)]}})

    # -- the API -------------------------------------------------------------------------------------------------
    def get(self, caller_account: str, caller_region: str, reachable: Callable[[str, str], bool],
            params: dict[str, Any]) -> dict[str, Any]:
        criteria = params.get("SortCriteria") or list(DEFAULT_SORT)
        fields = [str(c.get("Field")) for c in criteria]
        descending = [c.get("SortOrder", "asc") == "desc" for c in criteria]
        limit = params.get("MaxResults", 100)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise validation("MaxResults must be between 1 and 100")
        predicate = compile_v2_filters(params.get("Filters"), self._now())
        digest = query_digest("v2", params.get("Filters") or {}, criteria, params.get("Scopes") or {},
                              caller_account, caller_region)
        token = params.get("NextToken")
        after = decode_token(token, digest, len(fields) + 3) if token else None

        def key(s: StoredV2) -> list[Any]:
            return [sort_value(s.doc, f) for f in fields] + [s.uid, s.account, s.region]

        with self._lock:
            self.expire()
            matching = [s for (acct, reg), store in self._stores.items() if reachable(acct, reg)
                        for s in store.values() if predicate(s.doc)]
            chunk, next_after = page(matching, key, descending, after, limit)
            out: dict[str, Any] = {"Findings": [copy.deepcopy(s.doc) for s in chunk]}
        if next_after is not None:
            out["NextToken"] = encode_token(digest, next_after)
        return out

    def update(self, reachable: Callable[[str, str], bool], params: dict[str, Any],
               unprocessed_fault: Any = None) -> dict[str, Any]:
        uids, idents = params.get("MetadataUids"), params.get("FindingIdentifiers")
        if uids and idents:
            raise validation("Customers cannot use MetadataUids together with FindingIdentifiers")
        targets: list[Any] = list(uids or idents or [])
        if not targets:
            raise validation("Specify MetadataUids or FindingIdentifiers")
        if len(targets) > MAX_UPDATE:
            raise validation(f"at most {MAX_UPDATE} findings per request, got {len(targets)}")
        changes = self._changes(params)
        processed: list[dict[str, Any]] = []
        unprocessed: list[dict[str, Any]] = []
        with self._lock:
            self.expire()
            visible = [s for (acct, reg), store in self._stores.items() if reachable(acct, reg)
                       for s in store.values()]
            for target in targets:
                if isinstance(target, str):
                    hits = [s for s in visible if s.uid == target]
                    echo: dict[str, Any] = {"MetadataUid": target}
                else:
                    hits = [s for s in visible if s.identifier() == dict(target)]
                    echo = {"FindingIdentifier": dict(target)}
                fid = target if isinstance(target, str) else target.get("FindingInfoUid")
                if unprocessed_fault is not None and (unprocessed_fault.ids is None or fid in unprocessed_fault.ids):
                    unprocessed.append({**echo, "ErrorCode": unprocessed_fault.code,
                                        "ErrorMessage": unprocessed_fault.message})
                    continue
                if not hits:
                    unprocessed.append({**echo, "ErrorCode": "ResourceNotFoundException",
                                        "ErrorMessage": "Finding not found"})
                    continue
                for s in hits:
                    s.doc.update(changes)
                    if "status_id" in changes:
                        s.customer_status = True
                    if "comment" in changes:
                        s.customer["comment"] = changes["comment"]
                    self._emit_event(s)
                processed.append({**echo, **({"MetadataUid": hits[0].uid} if "MetadataUid" not in echo else {})})
        return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}

    @staticmethod
    def _changes(params: dict[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if "Comment" in params:
            comment = params["Comment"]
            if not isinstance(comment, str) or not 1 <= len(comment) <= MAX_COMMENT:
                raise validation(f"Comment must be 1 to {MAX_COMMENT} characters")
            changes["comment"] = comment
        if "SeverityId" in params:
            if params["SeverityId"] not in SEVERITY_NAMES:
                raise validation(f"SeverityId must be one of {sorted(SEVERITY_NAMES)}")
            changes.update(severity_id=params["SeverityId"], severity=SEVERITY_NAMES[params["SeverityId"]])
        if "StatusId" in params:
            if params["StatusId"] not in STATUS_NAMES:
                raise validation(f"StatusId must be one of {sorted(STATUS_NAMES)}")
            changes.update(status_id=params["StatusId"], status=STATUS_NAMES[params["StatusId"]])
        if not changes:
            raise validation("Specify at least one of Comment, SeverityId and StatusId")
        return changes
