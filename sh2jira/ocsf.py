"""OCSF findings of the new Security Hub (GetFindingsV2, "Findings Imported V2") as sh2jira's `Finding`.

The rest of sh2jira (rulebook, plan, render, explain) reads one model, so an OCSF finding is mapped onto the
ASFF vocabulary once, here, and rules written for CSPM findings match V2 findings the same way.

**Identity (one issue across both sources).** The key is `FindingKey(ProductArn, Id)` with
`Id = finding_info.uid` and `ProductArn = metadata.product.uid` with `:productv2/` turned back into
`:product/` (the mapping AWS's own Automated Security Response uses). For a CSPM control finding
`finding_info.uid` *is* the ASFF `Id` (FACTS.md), and GuardDuty's and Inspector's uids are the same ARNs as
their ASFF Ids, so such a finding has the same ledger key, the same label `sh2jira-<digest>` and therefore the
same issue whether it is read through GetFindings or GetFindingsV2. Ledgers and labels written before the V2
source existed stay valid: no key changes. `metadata.uid` is not used for identity: it exists only on the V2
side and is missing in some real findings. Findings of V2-only products (Coverage, Exposure) get a
`…:product/aws/securityhub-coverage`-style ProductArn that no CSPM finding carries; their `finding_info.uid`
may be a bare 64-hex id, taken as globally unique (it is the V2 global id's form).

**State.** `activity_name` Close (or `status_id` 5 Archived) reads as RecordState ARCHIVED: the finding is
over. `status_id` maps to the workflow: 1 New → NEW, 2 In Progress and 99 Other → NOTIFIED (what sh2jira's
link-back sets), 3 Suppressed → SUPPRESSED, 4 Resolved → RESOLVED, 0 Unknown → NEW. Status and activity are
independent in real findings (a Close with status New exists); each is read on its own.
`compliance.status_id` 1 Pass / 2 Warning / 3 Fail becomes PASSED / WARNING / FAILED, and any other value of
a present `compliance` NOT_AVAILABLE. `severity_id` 1–5 become INFORMATIONAL…CRITICAL and 6 Fatal counts as
CRITICAL; 0 Unknown and 99 Other fall back to the `severity` text, and a finding whose severity says nothing
is refused (a FindingError), since guessing a low severity could hide it.

Resource types in CloudFormation form (`AWS::S3::Bucket`) are written the ASFF way (`AwsS3Bucket`), so
`resource_type` rules work on both; a resource's id is its ARN (`uid`, or `uid_alt` when `uid` is a name,
URL or instance id). The first of `remediation.references` is the remediation URL, further ones are listed
after the remediation text; Inspector's per-package `remediation.desc` stands in when the finding has none.
`vulnerabilities[]` (CVE, CVSS, EPSS as a string, fix availability, packages) are summarised at the end of
the description, which is where ASFF findings carry such detail too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .finding import (
    FieldReader,
    Finding,
    FindingError,
    FindingKey,
    Resource,
    Vulnerability,
    epss_score,
    parse_time,
    unwrap_documents,
)

log = logging.getLogger(__name__)

V2_EVENT = "Findings Imported V2"
SEVERITY_BY_ID = {1: "INFORMATIONAL", 2: "LOW", 3: "MEDIUM", 4: "HIGH", 5: "CRITICAL", 6: "CRITICAL"}
WORKFLOW_BY_STATUS = {0: "NEW", 1: "NEW", 2: "NOTIFIED", 3: "SUPPRESSED", 4: "RESOLVED", 5: "RESOLVED",
                      99: "NOTIFIED"}
STATUS_ID = {"NEW": 1, "IN_PROGRESS": 2, "SUPPRESSED": 3, "RESOLVED": 4, "ARCHIVED": 5, "OTHER": 99}
COMPLIANCE_BY_ID = {1: "PASSED", 2: "WARNING", 3: "FAILED"}
DELETED = "DELETED"  # record state of a tracked V2 finding Security Hub no longer has (see tombstone)
_ARCHIVED_STATUS = 5
_SEVERITY_WORDS = {"informational": "INFORMATIONAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH",
                   "critical": "CRITICAL", "fatal": "CRITICAL"}


def is_ocsf(raw: Any) -> bool:
    """Whether a document is an OCSF finding (not ASFF): it has `finding_info` or OCSF's `class_uid`."""
    return isinstance(raw, Mapping) and ("finding_info" in raw or "class_uid" in raw) and "ProductArn" not in raw


def parse_any(raw: Any) -> Finding:
    """An ASFF or an OCSF finding → Finding (FindingError naming the field at fault)."""
    return parse_ocsf(raw) if is_ocsf(raw) else Finding.parse(raw)


def unwrap(doc: Any) -> list[Any]:
    """Findings in a document: one finding (either format), a list, a GetFindings(V2) reply, or an
    EventBridge event ("Security Hub Findings - Imported" or "Findings Imported V2")."""
    return unwrap_documents(doc)


def asff_product_arn(product_uid: str) -> str:
    """metadata.product.uid → the ASFF ProductArn (`:productv2/` → `:product/`)."""
    return product_uid.replace(":productv2/", ":product/", 1)


def v2_product_uid(product_arn: str) -> str:
    """The ASFF ProductArn → metadata.product.uid (the inverse of `asff_product_arn`)."""
    return product_arn.replace(":product/", ":productv2/", 1)


def asff_resource_type(ocsf_type: str) -> str:
    """`AWS::EC2::Instance` → `AwsEc2Instance`, `AWS::::Account` → `AwsAccount` (ASFF spelling)."""
    if "::" not in ocsf_type:
        return ocsf_type
    parts = [p for p in ocsf_type.split("::") if p]
    return "".join(p[0] + p[1:].lower() if p.isupper() else p[0].upper() + p[1:] for p in parts)


# The comments sh2jira's link-back and Jira-side writes leave on a V2 finding (linkback.full_values,
# plan.closure_write / reopen_write): they are the only place V2 can say which issue tracks a finding.
_LINKED = re.compile(r"^Tracked in Jira as (?P<key>[A-Z][A-Z0-9_]*-\d+)\b")
_CLOSED = re.compile(r"^Jira issue (?P<key>[A-Z][A-Z0-9_]*-\d+) was resolved\b")
_REOPENED = re.compile(r"^Jira issue (?P<key>[A-Z][A-Z0-9_]*-\d+) was reopened\b")


def _comment(raw: Mapping[str, Any]) -> str:
    value = raw.get("comment")
    return value if isinstance(value, str) else ""


def linked_issue_v2(raw: Mapping[str, Any]) -> str:
    """The issue key sh2jira's comment on a V2 finding names ('' when the comment is not sh2jira's)."""
    text = _comment(raw)
    found = _LINKED.match(text) or _CLOSED.match(text) or _REOPENED.match(text)
    return found.group("key") if found else ""


def link_status_v2(raw: Mapping[str, Any]) -> str:
    """'open' or 'closed' as sh2jira's last comment on the finding says ('' when it is not sh2jira's): the V2
    counterpart of UserDefinedFields.sh2jira_status."""
    text = _comment(raw)
    if _CLOSED.match(text):
        return "closed"
    return "open" if _LINKED.match(text) or _REOPENED.match(text) else ""


def raw_key(raw: Any) -> FindingKey | None:
    """The identity of a raw ASFF or OCSF document without parsing all of it (None when it has none)."""
    if not isinstance(raw, Mapping):
        return None
    if is_ocsf(raw):
        info, meta = raw.get("finding_info"), raw.get("metadata")
        uid = info.get("uid") if isinstance(info, Mapping) else None
        product = meta.get("product") if isinstance(meta, Mapping) else None
        puid = product.get("uid") if isinstance(product, Mapping) else None
        if isinstance(uid, str) and isinstance(puid, str) and uid and puid:
            return FindingKey(asff_product_arn(puid), uid)
        return None
    fid, arn = raw.get("Id"), raw.get("ProductArn")
    return FindingKey(arn, fid) if isinstance(fid, str) and isinstance(arn, str) and fid and arn else None


def tombstone_doc(finding_id: str, product_arn: str, account_id: str = "", region: str = "") -> dict[str, Any]:
    """The stand-in document of a tracked V2 finding that GetFindingsV2 no longer returns (closed findings are
    deleted after 14 days). It parses with record state DELETED, so the planner resolves its issue with a
    comment saying the finding is gone. The marker key cannot come from Security Hub: OCSF has no such field."""
    return {"finding_info": {"uid": finding_id, "title": "(deleted from Security Hub)"},
            "metadata": {"product": {"uid": v2_product_uid(product_arn)}},
            "cloud": {"account": {"uid": account_id or "unknown"}, "region": region},
            "activity_name": "Close", "severity_id": 1, _TOMBSTONE: True}


def tombstone(finding_id: str, product_arn: str, account_id: str = "", region: str = "") -> Finding:
    return parse_ocsf(tombstone_doc(finding_id, product_arn, account_id, region))


_TOMBSTONE = "sh2jira_deleted"


def parse_ocsf(raw: Any) -> Finding:
    """Validate and map one OCSF finding; raise FindingError naming what is wrong."""
    if not isinstance(raw, Mapping):
        raise FindingError("", f"expected a JSON object, got {type(raw).__name__}")
    info = raw.get("finding_info")
    uid = info.get("uid") if isinstance(info, Mapping) else None
    p = _Reader(raw, uid if isinstance(uid, str) else "")
    finding_uid = p.required_str("finding_info", "uid")
    product_uid = p.required_str("metadata", "product", "uid")
    title = p.required_str("finding_info", "title")
    account = p.required_str("cloud", "account", "uid")
    product_arn = asff_product_arn(product_uid)
    control = p.optional_str("compliance", "control")
    remediation_text, remediation_url = _remediation(p)
    status_id = p.optional_int("status_id")
    closed = p.optional_str("activity_name").casefold() == "close" or status_id == _ARCHIVED_STATUS
    region = p.optional_str("cloud", "region") or _region_from(product_uid)
    if raw.get(_TOMBSTONE) is True:
        closed, record_state = True, DELETED
    else:
        record_state = "ARCHIVED" if closed else "ACTIVE"
    return Finding(
        key=FindingKey(product_arn=product_arn, id=finding_uid),
        title=title,
        description=_description(p),
        product_name=p.optional_str("metadata", "product", "name") or product_arn.rsplit("/", 1)[-1],
        company_name=p.optional_str("metadata", "product", "vendor_name"),
        account_id=account,
        account_name=p.optional_str("cloud", "account", "name"),
        region=region,
        generator_id=f"security-control/{control}" if control else p.optional_str("finding_info", "analytic", "uid"),
        severity_label=_severity(p),
        severity_normalized=None,
        types=tuple(p.str_list("finding_info", "types")),
        resources=_resources(p, region),
        compliance_status=_compliance(p),
        control_id=control,
        remediation_text=remediation_text,
        remediation_url=remediation_url,
        record_state=record_state,
        workflow_status=_workflow(p, status_id),
        first_observed_at=_time(p, "first_seen_time"),
        last_observed_at=_time(p, "last_seen_time"),
        created_at=_time(p, "created_time"),
        updated_at=_time(p, "modified_time") or _top_time(p),
        source_url=p.optional_str("finding_info", "src_url"),
        raw=raw,
        vulnerabilities=_vulnerabilities(p),
    )


class _Reader(FieldReader):
    """Typed access to nested OCSF fields; errors name the dotted path."""

    def optional_int(self, *path: str) -> int | None:
        value = self.get(*path)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise FindingError(self.finding_id, f"{'.'.join(path)} must be an integer, got {value!r}")
        return value

    def objects(self, *path: str) -> list[Mapping[str, Any]]:
        value = self.get(*path)
        if value is None:
            return []
        if not isinstance(value, list):
            raise FindingError(self.finding_id, f"{'.'.join(path)} must be a list")
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise FindingError(self.finding_id, f"{'.'.join(path)}[{i}] must be an object")
        return list(value)


_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$")


def _region_from(arn: str) -> str:
    return next((part for part in arn.split(":")[2:6] if _REGION.match(part)), "")


def _severity(p: _Reader) -> str:
    sid = p.optional_int("severity_id")
    if sid in SEVERITY_BY_ID:
        return SEVERITY_BY_ID[sid]
    if sid is not None and sid not in (0, 99):
        raise FindingError(p.finding_id, f"severity_id {sid} is not one of 0-6, 99")
    word = _SEVERITY_WORDS.get(p.optional_str("severity").casefold())
    if word:
        return word
    if sid is None:
        raise FindingError(p.finding_id, "severity_id is missing")
    raise FindingError(p.finding_id, f"severity_id {sid} ({'Unknown' if sid == 0 else 'Other'}) and severity "
                                     f"{p.optional_str('severity')!r} name no severity")


def _workflow(p: _Reader, status_id: int | None) -> str:
    if status_id is None:
        word = p.optional_str("status").replace(" ", "_").upper()
        status_id = STATUS_ID.get(word, 1)
    if status_id not in WORKFLOW_BY_STATUS:
        raise FindingError(p.finding_id, f"status_id {status_id} is not one of 0-5, 99")
    return WORKFLOW_BY_STATUS[status_id]


def _compliance(p: _Reader) -> str:
    if p.get("compliance") is None:
        return ""
    sid = p.optional_int("compliance", "status_id")
    if sid in COMPLIANCE_BY_ID:
        return COMPLIANCE_BY_ID[sid]
    word = p.optional_str("compliance", "status").casefold()
    return {"pass": "PASSED", "warning": "WARNING", "fail": "FAILED"}.get(word, "NOT_AVAILABLE")


def _remediation(p: _Reader) -> tuple[str, str]:
    text = p.optional_str("remediation", "desc")
    refs = [r for r in p.str_list("remediation", "references") if r.strip()]
    if not text:  # Inspector carries it per affected package
        for vuln in p.objects("vulnerabilities"):
            for pkg in vuln.get("affected_packages") or []:
                desc = pkg.get("remediation", {}).get("desc") if isinstance(pkg, Mapping) else None
                if isinstance(desc, str) and desc.strip():
                    text = desc
                    break
            if text:
                break
    if len(refs) > 1:
        text = f"{text}\nSee also: {' '.join(refs[1:])}".strip()
    return text, refs[0] if refs else ""


def _resources(p: _Reader, default_region: str) -> tuple[Resource, ...]:
    out = []
    for i, item in enumerate(p.objects("resources")):
        rtype, uid, alt = item.get("type"), item.get("uid"), item.get("uid_alt")
        if not isinstance(rtype, str) or not rtype:
            raise FindingError(p.finding_id, f"resources[{i}].type must be a non-empty string")
        ids = [v for v in (uid, alt) if isinstance(v, str) and v]
        if not ids:
            raise FindingError(p.finding_id, f"resources[{i}] needs a uid or uid_alt")
        rid = next((v for v in ids if v.startswith("arn:")), ids[0])
        partition = item.get("cloud_partition")
        if not isinstance(partition, str):
            partition = rid.split(":")[1] if rid.startswith("arn:") else ""
        out.append(Resource(type=asff_resource_type(rtype), id=rid,
                            region=str(item.get("region") or default_region), partition=partition,
                            tags=_tags(p, item.get("tags"), i)))
    return tuple(out)


def _tags(p: _Reader, tags: Any, i: int) -> dict[str, str]:
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    if isinstance(tags, list) and all(isinstance(t, Mapping) and isinstance(t.get("name"), str) for t in tags):
        return {t["name"]: str(t.get("value") or "") for t in tags}
    raise FindingError(p.finding_id, f"resources[{i}].tags must be a list of {{name, value}} objects")


def _time(p: _Reader, name: str) -> str:
    """finding_info.<name>_dt (ISO, 3 or 9 fraction digits) or <name> (epoch ms) → ISO-8601, ms, Z."""
    text = p.optional_str("finding_info", f"{name}_dt")
    if text:
        return _normal_iso(p, f"finding_info.{name}_dt", text)
    return _from_ms(p, p.get("finding_info", name), f"finding_info.{name}")


def _top_time(p: _Reader) -> str:
    text = p.optional_str("time_dt")
    return _normal_iso(p, "time_dt", text) if text else _from_ms(p, p.get("time"), "time")


def _from_ms(p: _Reader, value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FindingError(p.finding_id, f"{where} must be epoch milliseconds, got {value!r}")
    moment = datetime.fromtimestamp(value / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _normal_iso(p: _Reader, where: str, text: str) -> str:
    moment = parse_time(text)
    if moment is None:
        raise FindingError(p.finding_id, f"{where} is not an ISO-8601 timestamp: {text!r}")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _description(p: _Reader) -> str:
    text = p.optional_str("finding_info", "desc")
    lines = [_vulnerability_line(p, i, v) for i, v in enumerate(p.objects("vulnerabilities"))]
    lines = [line for line in lines if line]
    if lines:
        text = "\n".join([text, "", "Vulnerabilities:", *lines]).strip()
    return text


def _vulnerabilities(p: _Reader) -> tuple[Vulnerability, ...]:
    """OCSF's equivalents of Inspector's ASFF fields, so `exploit_available`, `known_exploited` and `epss_min`
    rules match both sources: is_exploit_available, exploit_last_seen_time(_dt), cve.epss.score."""
    out = []
    for i, vuln in enumerate(p.objects("vulnerabilities")):
        found = vuln.get("cve")
        cve: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        epss = cve.get("epss")
        exploit = vuln.get("is_exploit_available")
        if exploit is not None and not isinstance(exploit, bool):  # unknown, not fatal (finding._vulnerabilities)
            log.warning("finding %s: vulnerabilities[%d].is_exploit_available is not true or false (got %r): taken "
                        "as unknown", p.finding_id, i, exploit, extra={"finding_id": p.finding_id})
            exploit = None
        out.append(Vulnerability(
            id=str(cve.get("uid") or vuln.get("title") or ""), exploit_available=exploit,
            known_exploited=bool(vuln.get("exploit_last_seen_time") or vuln.get("exploit_last_seen_time_dt")),
            epss=epss_score(p.finding_id, f"vulnerabilities[{i}].cve.epss.score",
                            epss.get("score") if isinstance(epss, Mapping) else None)))
    return tuple(out)


def _vulnerability_line(p: _Reader, i: int, vuln: Mapping[str, Any]) -> str:
    found = vuln.get("cve")
    cve: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    name = str(cve.get("uid") or vuln.get("title") or "")
    if not name:
        return ""
    parts = [name]
    scores: list[float] = [c["base_score"] for c in cve.get("cvss") or [] if isinstance(c, Mapping)
                           and isinstance(c.get("base_score"), int | float) and not isinstance(c["base_score"], bool)]
    if scores:
        parts.append(f"CVSS {max(scores):g}")
    epss = (cve.get("epss") or {}).get("score") if isinstance(cve.get("epss"), Mapping) else None
    if epss is not None:
        try:
            parts.append(f"EPSS {float(epss):.4f}")  # a string in real findings
        except (TypeError, ValueError):
            raise FindingError(p.finding_id, f"vulnerabilities[{i}].cve.epss.score is not a number: {epss!r}") \
                from None
    if vuln.get("is_exploit_available") is True:
        parts.append("exploit available")
    if vuln.get("is_fix_available") is True:
        parts.append("fix available")
    packages = [f"{pkg.get('name')} {pkg.get('version') or ''}".strip() +
                (f" (fixed in {pkg['fixed_in_version']})" if pkg.get("fixed_in_version") else "")
                for pkg in vuln.get("affected_packages") or [] if isinstance(pkg, Mapping) and pkg.get("name")]
    if packages:
        parts.append("packages: " + ", ".join(packages))
    return "- " + "; ".join(parts)


__all__ = ["DELETED", "V2_EVENT", "asff_product_arn", "asff_resource_type", "is_ocsf", "link_status_v2",
           "linked_issue_v2", "parse_any", "parse_ocsf", "raw_key", "tombstone", "tombstone_doc", "unwrap",
           "v2_product_uid"]
