"""A typed, validated view of one ASFF finding: the only shape the rest of sh2jira reads.

Real findings come from many products and are often incomplete (no Severity.Label, no Remediation, no
Workflow, legacy WorkflowState). Parsing fills those gaps once, here, by documented rules, and rejects what
cannot be ticketed with a `FindingError` that names the finding and the reason.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SEVERITY_LABELS = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
WORKFLOW_STATUSES = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")
# Legacy top-level WorkflowState values and the Workflow.Status they stand for.
log = logging.getLogger(__name__)
_LEGACY_WORKFLOW = {"NEW": "NEW", "ASSIGNED": "NOTIFIED", "IN_PROGRESS": "NOTIFIED", "DEFERRED": "SUPPRESSED",
                    "RESOLVED": "RESOLVED"}


class FindingError(ValueError):
    """A finding that cannot be parsed; carries the finding id (if any) and the reason."""

    def __init__(self, finding_id: str, reason: str) -> None:
        super().__init__(f"finding {finding_id or '<no Id>'}: {reason}")
        self.finding_id = finding_id
        self.reason = reason


def label_from_normalized(normalized: int) -> str:
    """Severity.Normalized → label, by Security Hub's documented ranges."""
    if normalized <= 0:
        return "INFORMATIONAL"
    if normalized <= 39:
        return "LOW"
    if normalized <= 69:
        return "MEDIUM"
    if normalized <= 89:
        return "HIGH"
    return "CRITICAL"


@dataclass(frozen=True, order=True)
class FindingKey:
    """A finding's identity in Security Hub: ProductArn + Id."""

    product_arn: str
    id: str

    @property
    def digest(self) -> str:
        """Short stable hash of the key: safe in a Jira label and in JQL without quoting issues."""
        raw = f"{self.product_arn}\n{self.id}".encode()
        return hashlib.sha256(raw).hexdigest()[:20]

    @property
    def label(self) -> str:
        """The deterministic Jira label that ties an issue to this finding (used to rebuild the ledger)."""
        return f"sh2jira-{self.digest}"

    def as_identifier(self) -> dict[str, str]:
        """The FindingIdentifier shape of BatchUpdateFindings."""
        return {"Id": self.id, "ProductArn": self.product_arn}


@dataclass(frozen=True)
class Resource:
    type: str
    id: str
    region: str = ""
    partition: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Vulnerability:
    """What a rule can ask of one of the finding's vulnerabilities (Inspector's `Vulnerabilities[]`, OCSF's
    `vulnerabilities[]`). None: the provider did not say."""

    id: str = ""
    exploit_available: bool | None = None  # ASFF ExploitAvailable YES/NO; OCSF is_exploit_available
    known_exploited: bool = False  # an exploit was seen in the wild: ASFF LastKnownExploitAt; OCSF
    # exploit_last_seen_time(_dt). Neither format carries CISA's KEV flag itself (botocore's model, the samples).
    epss: float | None = None  # EPSS probability 0..1: ASFF EpssScore; OCSF cve.epss.score (a string there)


@dataclass(frozen=True)
class Finding:
    """The fields sh2jira uses. `raw` keeps the original document for `explain` and rule matching."""

    key: FindingKey
    title: str
    description: str
    product_name: str
    company_name: str
    account_id: str
    account_name: str
    region: str
    generator_id: str
    severity_label: str
    severity_normalized: int | None
    types: tuple[str, ...]
    resources: tuple[Resource, ...]
    compliance_status: str
    control_id: str
    remediation_text: str
    remediation_url: str
    record_state: str
    workflow_status: str
    first_observed_at: str
    last_observed_at: str
    created_at: str
    updated_at: str
    source_url: str
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)
    vulnerabilities: tuple[Vulnerability, ...] = ()

    @property
    def id(self) -> str:
        return self.key.id

    @property
    def is_active(self) -> bool:
        return self.record_state == "ACTIVE"

    @classmethod
    def parse(cls, raw: Any) -> Finding:
        """Validate and normalise one ASFF document; raise FindingError naming what is wrong."""
        if not isinstance(raw, Mapping):
            raise FindingError("", f"expected a JSON object, got {type(raw).__name__}")
        fid = raw.get("Id")
        fid_text = fid if isinstance(fid, str) else ""
        p = FieldReader(raw, fid_text)
        product_arn = p.required_str("ProductArn")
        finding_id = p.required_str("Id")
        title = p.required_str("Title")
        description = p.optional_str("Description")
        account_id = p.required_str("AwsAccountId")
        return cls(
            key=FindingKey(product_arn=product_arn, id=finding_id),
            title=title,
            description=description,
            product_name=p.optional_str("ProductName") or _product_from_arn(product_arn),
            company_name=p.optional_str("CompanyName"),
            account_id=account_id,
            account_name=p.optional_str("AwsAccountName"),
            region=p.optional_str("Region") or _region_from_arn(product_arn),
            generator_id=p.optional_str("GeneratorId"),
            severity_label=_severity_label(p),
            severity_normalized=_severity_normalized(p),
            types=tuple(p.str_list("Types")),
            resources=_resources(p),
            compliance_status=p.optional_str("Compliance", "Status"),
            control_id=_control_id(p),
            remediation_text=p.optional_str("Remediation", "Recommendation", "Text"),
            remediation_url=p.optional_str("Remediation", "Recommendation", "Url"),
            record_state=p.optional_str("RecordState") or "ACTIVE",
            workflow_status=_workflow_status(p),
            first_observed_at=p.optional_str("FirstObservedAt"),
            last_observed_at=p.optional_str("LastObservedAt"),
            created_at=p.optional_str("CreatedAt"),
            updated_at=p.optional_str("UpdatedAt"),
            source_url=p.optional_str("SourceUrl"),
            raw=raw,
            vulnerabilities=_vulnerabilities(p),
        )


class FieldReader:
    """Typed access to nested fields (ASFF here, OCSF in ocsf.py) with errors that name the path."""

    def __init__(self, raw: Mapping[str, Any], finding_id: str) -> None:
        self.raw = raw
        self.finding_id = finding_id

    def get(self, *path: str) -> Any:
        node: Any = self.raw
        for i, part in enumerate(path):
            if node is None:
                return None
            if not isinstance(node, Mapping):
                raise FindingError(self.finding_id, f"{'.'.join(path[:i])} must be an object")
            node = node.get(part)
        return node

    def required_str(self, *path: str) -> str:
        value = self.get(*path)
        if not isinstance(value, str) or not value.strip():
            what = "is missing" if value is None else "must be a non-empty string"
            raise FindingError(self.finding_id, f"{'.'.join(path)} {what}")
        return value

    def optional_str(self, *path: str) -> str:
        value = self.get(*path)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise FindingError(self.finding_id, f"{'.'.join(path)} must be a string, got {type(value).__name__}")
        return value

    def str_list(self, *path: str) -> list[str]:
        value = self.get(*path)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FindingError(self.finding_id, f"{'.'.join(path)} must be a list of strings")
        return list(value)


# ProductName as Security Hub spells it for AWS integrations, by the ProductArn's last segment.
_AWS_PRODUCTS = {"securityhub": "Security Hub", "guardduty": "GuardDuty", "inspector": "Inspector",
                 "access-analyzer": "IAM Access Analyzer", "macie": "Macie", "config": "Config",
                 "health": "Health", "ssm-patch-manager": "Systems Manager Patch Manager",
                 "firewall-manager": "Firewall Manager", "detective": "Detective"}


def _product_from_arn(arn: str) -> str:
    # arn:aws:securityhub:REGION:ACCOUNT:product/COMPANY/PRODUCT — split from the right: some real ARNs carry
    # an extra colon in the partition part.
    parts = arn.rsplit("/", 2)
    if len(parts) < 2:
        return arn
    if len(parts) == 3 and parts[1] == "aws":
        return _AWS_PRODUCTS.get(parts[2], parts[2])
    return parts[-1]


_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$")


def _region_from_arn(arn: str) -> str:
    # The region is normally the 4th field; some real ARNs carry an extra colon, so take the first field
    # after the partition that looks like a region.
    return next((p for p in arn.split(":")[2:6] if _REGION.match(p)), "")


def _severity_label(p: FieldReader) -> str:
    for path in (("Severity", "Label"), ("FindingProviderFields", "Severity", "Label")):
        label = p.optional_str(*path).upper()
        if label:
            if label not in SEVERITY_LABELS:
                raise FindingError(p.finding_id, f"{'.'.join(path)} {label!r} is not one of {SEVERITY_LABELS}")
            return label
    normalized = _severity_normalized(p)
    if normalized is not None:
        return label_from_normalized(normalized)
    raise FindingError(p.finding_id, "Severity has neither Label nor Normalized")


def _severity_normalized(p: FieldReader) -> int | None:
    value = p.get("Severity", "Normalized")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise FindingError(p.finding_id, f"Severity.Normalized must be a number 0..100, got {value!r}")
    return int(value)


def _control_id(p: FieldReader) -> str:
    control = p.optional_str("Compliance", "SecurityControlId")
    if control:
        return control
    generator = p.optional_str("GeneratorId")
    if generator.startswith("security-control/"):
        return generator.split("/", 1)[1]
    fields = p.get("ProductFields")
    if isinstance(fields, Mapping):
        value = fields.get("ControlId") or fields.get("RuleId")
        if isinstance(value, str):
            return value
    return ""


def _workflow_status(p: FieldReader) -> str:
    status = p.optional_str("Workflow", "Status")
    if status:
        if status not in WORKFLOW_STATUSES:
            raise FindingError(p.finding_id, f"Workflow.Status {status!r} is not one of {WORKFLOW_STATUSES}")
        return status
    legacy = p.optional_str("WorkflowState")
    return _LEGACY_WORKFLOW.get(legacy, "NEW")


def _resources(p: FieldReader) -> tuple[Resource, ...]:
    value = p.get("Resources")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FindingError(p.finding_id, "Resources must be a list")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise FindingError(p.finding_id, f"Resources[{i}] must be an object")
        tags = item.get("Tags") or {}
        if not isinstance(tags, Mapping):
            raise FindingError(p.finding_id, f"Resources[{i}].Tags must be an object")
        rtype, rid = item.get("Type"), item.get("Id")
        if not isinstance(rtype, str) or not isinstance(rid, str):
            raise FindingError(p.finding_id, f"Resources[{i}] needs string Type and Id")
        out.append(Resource(type=rtype, id=rid, region=str(item.get("Region") or ""),
                            partition=str(item.get("Partition") or ""),
                            tags={str(k): str(v) for k, v in tags.items()}))
    return tuple(out)


def _vulnerabilities(p: FieldReader) -> tuple[Vulnerability, ...]:
    """Inspector's exploit and EPSS facts. A value of an unexpected shape is logged and taken as unknown, never
    fatal: the finding is still ticketed, updated and resolved; only the exploit/EPSS conditions cannot hold."""
    value = p.get("Vulnerabilities")
    if value is None:
        return ()
    if not isinstance(value, list):
        _odd(p.finding_id, "Vulnerabilities is not a list", value)
        return ()
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            _odd(p.finding_id, f"Vulnerabilities[{i}] is not an object", item)
            continue
        exploit = item.get("ExploitAvailable")
        if exploit not in (None, "YES", "NO"):
            _odd(p.finding_id, f"Vulnerabilities[{i}].ExploitAvailable is not YES or NO", exploit)
            exploit = None
        seen = item.get("LastKnownExploitAt")
        out.append(Vulnerability(
            id=str(item.get("Id") or ""), exploit_available=None if exploit is None else exploit == "YES",
            known_exploited=isinstance(seen, str) and bool(seen.strip()),
            epss=epss_score(p.finding_id, f"Vulnerabilities[{i}].EpssScore", item.get("EpssScore"))))
    return tuple(out)


def _odd(finding_id: str, what: str, value: Any) -> None:
    log.warning("finding %s: %s (got %r): taken as unknown", finding_id, what, value,
                extra={"finding_id": finding_id})


def epss_score(finding_id: str, where: str, value: Any) -> float | None:
    """An EPSS score (a probability, 0..1; OCSF sends it as a string); None, logged, if it is not one."""
    if value is None or value == "":
        return None
    try:
        score = float(value) if isinstance(value, int | float | str) and not isinstance(value, bool) else -1.0
    except ValueError:
        score = -1.0
    if not 0.0 <= score <= 1.0:
        _odd(finding_id, f"{where} is not a number from 0 to 1", value)
        return None
    return score


def unwrap_documents(doc: Any) -> list[Any]:
    """Findings in a JSON document: one finding, a list, `{"Findings": [...]}` or an EventBridge event."""
    if isinstance(doc, list):
        return [f for item in doc for f in unwrap_documents(item)]
    if isinstance(doc, Mapping):
        if isinstance(doc.get("detail"), Mapping) and "findings" in doc["detail"]:
            return list(doc["detail"]["findings"])
        if "Findings" in doc and isinstance(doc["Findings"], list):
            return list(doc["Findings"])
    return [doc]


def parse_time(text: str) -> datetime | None:
    """A finding timestamp (ASFF or OCSF: any fraction precision, Z or an offset) as an aware datetime; None when
    it is empty or unparseable. Python reads at most 6 fraction digits; producers send up to 9."""
    if not text:
        return None
    t = text.strip().replace("Z", "+00:00")
    if "." in t:
        head, rest = t.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        t = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        parsed = datetime.fromisoformat(t)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
