"""How one account+region store of findings changes on BatchImportFindings and BatchUpdateFindings.

Documented rules implemented here (Security Hub user guide and API reference):
- A finding is identified by ProductArn + Id. An import whose UpdatedAt is older than the stored one is
  ignored (but still counted as a success).
- A re-import replaces the provider's fields and keeps Note, UserDefinedFields, VerificationState and
  Workflow. Confidence, Criticality, RelatedFindings, Severity and Types keep the customer's value once
  BatchUpdateFindings changed them; otherwise they follow the provider (FindingProviderFields first).
- New findings: FindingProviderFields and the top-level fields fill each other; Severity.Label and
  Severity.Normalized fill each other; RecordState defaults to ACTIVE, Workflow.Status to NEW (a value the
  provider sends for a new finding is kept); Region is the region the finding was imported in.
- NOTIFIED/RESOLVED go back to NEW when RecordState goes ARCHIVED → ACTIVE or Compliance.Status goes
  PASSED → FAILED/WARNING/NOT_AVAILABLE; SUPPRESSED is never reset.
- BatchUpdateFindings never touches UpdatedAt; both operations set ProcessedAt.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from sh2jira.finding import label_from_normalized
from sh2jira.sandbox.sh_validate import parse_timestamp, validate_finding

MAX_FINDING_BYTES = 240 * 1024
MAX_USER_DEFINED_FIELDS = 50
PROVIDER_FIELDS = ("Confidence", "Criticality", "RelatedFindings", "Severity", "Types")
CUSTOMER_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow", "WorkflowState")
NORMALIZED_FROM_LABEL = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 40, "HIGH": 70, "CRITICAL": 90}
_RESETTABLE = ("NOTIFIED", "RESOLVED")
_FAILING = ("FAILED", "WARNING", "NOT_AVAILABLE")

Key = tuple[str, str]


@dataclass
class StoredFinding:
    """One finding as stored: the document plus what only the stand-in needs to know about it."""

    doc: dict[str, Any]
    account: str
    region: str
    customer_set: set[str] = field(default_factory=set)

    @property
    def key(self) -> Key:
        return (self.doc["ProductArn"], self.doc["Id"])

    def identifier(self) -> dict[str, str]:
        return {"Id": self.doc["Id"], "ProductArn": self.doc["ProductArn"]}


@dataclass
class ImportResult:
    """Outcome of importing one finding: a failure (code + message) or the stored finding."""

    finding_id: str
    error_code: str = ""
    message: str = ""
    stored: StoredFinding | None = None
    changed: bool = False

    @property
    def ok(self) -> bool:
        return not self.error_code


def import_finding(store: dict[Key, StoredFinding], raw: Any, *, account: str, region: str,
                   now: str) -> ImportResult:
    """Create or update one finding in `store` (the finding's account+region store)."""
    fid: str = raw["Id"] if isinstance(raw, dict) and isinstance(raw.get("Id"), str) else ""
    problems = validate_finding(raw)
    if problems:
        return ImportResult(fid or "unknown", "InvalidInput",
                            "Finding does not adhere to Amazon Finding Format. " + ", ".join(problems) + ".")
    if len(json.dumps(raw).encode()) > MAX_FINDING_BYTES:
        return ImportResult(fid, "FindingSizeExceeded", "Finding size exceeds the maximum of 240 KB.")
    doc = copy.deepcopy(raw)
    doc["Region"] = region
    company, product = _product_names(doc["ProductArn"])
    doc.setdefault("ProductName", product)
    doc.setdefault("CompanyName", company)
    old = store.get((doc["ProductArn"], doc["Id"]))
    if old is not None and _older(doc, old.doc):
        return ImportResult(fid, stored=old, changed=False)
    _sync_provider_fields(doc, old)
    severity = doc.get("Severity") or {}
    if "Label" not in severity and "Normalized" not in severity:
        return ImportResult(fid, "InvalidInput", "Finding does not adhere to Amazon Finding Format. "
                            "data.Severity should have either Label or Normalized.")
    doc.setdefault("RecordState", "ACTIVE")
    if old is None:
        doc.setdefault("Workflow", {"Status": "NEW"})
        doc["Workflow"].setdefault("Status", "NEW")
        doc.setdefault("WorkflowState", "NEW")
    else:
        for name in CUSTOMER_FIELDS:
            doc.pop(name, None)
            if name in old.doc:
                doc[name] = copy.deepcopy(old.doc[name])
        _apply_reset_rules(doc, old.doc)
    doc["ProcessedAt"] = now
    stored = StoredFinding(doc, account, region, set(old.customer_set) if old else set())
    store[stored.key] = stored
    return ImportResult(fid, stored=stored, changed=True)


def _product_names(product_arn: str) -> tuple[str, str]:
    tail = product_arn.rsplit("product/", 1)[-1].split("/")
    return (tail[0], tail[-1]) if len(tail) >= 2 else (tail[0], tail[0])


def _older(new: dict[str, Any], old: dict[str, Any]) -> bool:
    new_at, old_at = parse_timestamp(new["UpdatedAt"]), parse_timestamp(old.get("UpdatedAt", ""))
    return bool(new_at and old_at and new_at < old_at)


def _sync_provider_fields(doc: dict[str, Any], old: StoredFinding | None) -> None:
    provider = doc.get("FindingProviderFields") or {}
    for name in PROVIDER_FIELDS:
        top, given = doc.get(name), provider.get(name)
        if given is None and top is not None:
            provider[name] = _as_provider_value(name, top)
        elif top is None and given is not None:
            doc[name] = copy.deepcopy(given)
        if old is not None and name in old.customer_set:
            doc.pop(name, None)
            if name in old.doc:
                doc[name] = copy.deepcopy(old.doc[name])
    if provider:
        doc["FindingProviderFields"] = provider
    severity = doc.get("Severity")
    if isinstance(severity, dict):
        if "Label" not in severity and isinstance(severity.get("Normalized"), int | float):
            severity["Label"] = label_from_normalized(int(severity["Normalized"]))
        elif "Normalized" not in severity and severity.get("Label") in NORMALIZED_FROM_LABEL:
            severity["Normalized"] = NORMALIZED_FROM_LABEL[severity["Label"]]


def _as_provider_value(name: str, value: Any) -> Any:
    if name == "Severity" and isinstance(value, dict):
        # FindingProviderFields.Severity only has Label and Original in the model.
        return {k: v for k, v in value.items() if k in ("Label", "Original")}
    return copy.deepcopy(value)


def _apply_reset_rules(doc: dict[str, Any], old: dict[str, Any]) -> None:
    workflow = doc.get("Workflow") or {}
    if workflow.get("Status") not in _RESETTABLE:
        return
    reactivated = old.get("RecordState") == "ARCHIVED" and doc.get("RecordState") == "ACTIVE"
    old_status = (old.get("Compliance") or {}).get("Status")
    new_status = (doc.get("Compliance") or {}).get("Status")
    if reactivated or (old_status == "PASSED" and new_status in _FAILING):
        doc["Workflow"] = {**workflow, "Status": "NEW"}


def apply_update(stored: StoredFinding, update: dict[str, Any], now: str) -> tuple[str, str] | None:
    """Apply one BatchUpdateFindings request to a finding; (ErrorCode, message) if it cannot be applied."""
    doc = copy.deepcopy(stored.doc)
    if "UserDefinedFields" in update:
        merged = {**(doc.get("UserDefinedFields") or {}), **update["UserDefinedFields"]}
        if len(merged) > MAX_USER_DEFINED_FIELDS:
            return ("InvalidInput", f"UserDefinedFields would hold {len(merged)} pairs; at most "
                                    f"{MAX_USER_DEFINED_FIELDS} are allowed.")
        doc["UserDefinedFields"] = merged
    if "Workflow" in update and "Status" in update["Workflow"]:
        doc["Workflow"] = {**(doc.get("Workflow") or {}), "Status": update["Workflow"]["Status"]}
    if "Note" in update:
        note = update["Note"]
        doc["Note"] = {"Text": note["Text"], "UpdatedBy": note["UpdatedBy"], "UpdatedAt": now}
    if "Severity" in update:
        doc["Severity"] = _updated_severity(doc.get("Severity") or {}, update["Severity"])
    for name in ("VerificationState", "Confidence", "Criticality", "Types", "RelatedFindings"):
        if name in update:
            doc[name] = copy.deepcopy(update[name])
    if len(json.dumps(doc).encode()) > MAX_FINDING_BYTES:
        return ("FindingSizeExceeded", "The updated finding would exceed the maximum of 240 KB.")
    doc["ProcessedAt"] = now
    stored.doc = doc
    stored.customer_set.update(name for name in PROVIDER_FIELDS if name in update)
    return None


def _updated_severity(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    severity = dict(current)
    if "Label" in change:
        severity["Label"] = change["Label"]
        if "Normalized" not in change:
            severity["Normalized"] = NORMALIZED_FROM_LABEL[change["Label"]]
    if "Normalized" in change:
        severity["Normalized"] = change["Normalized"]
        if "Label" not in change:
            severity["Label"] = label_from_normalized(int(change["Normalized"]))
    if "Product" in change:
        severity["Product"] = change["Product"]
    return severity
