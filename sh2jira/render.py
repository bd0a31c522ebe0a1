"""The Jira fields sh2jira owns, rendered from a finding: summary, description, comments, their fingerprint.

Every piece of finding text goes through `sh2jira.wiki` (the summary is plain text in Jira, so it is only
cleaned); the only markup in a description is what this module writes itself: ``h3.`` headings,
``||key|value|`` tables, two links (remediation URL, Security Hub console) and one ``----`` rule above the
footer.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from sh2jira import wiki
from sh2jira.finding import Finding, Resource

SUMMARY_LIMIT = 255
DESCRIPTION_LIMIT = 32_767
MIN_DESCRIPTION_LIMIT = 1_000
SUMMARY_FIELDS = ("title", "severity", "product", "company", "account_id", "account_name", "region",
                  "control_id", "generator_id", "resource_type", "resource_id", "finding_id")

# Caps on one escaped value, in UTF-16 units: ASFF limits doubled by escaping, with room to spare, so a
# single oversized field cannot crowd out the rest.
_DESCRIPTION_CAP = 4_096
_REMEDIATION_CAP = 2_048
_CELL_CAP = 512
_LONG_CELL_CAP = 1_100
_RESOURCE_CAPS = (128, 1_024, 64, 32, 1_024)
_SEP = "\n\n"

_CONSOLE_HOSTS = {"aws": "console.aws.amazon.com", "aws-us-gov": "console.amazonaws-us-gov.com",
                  "aws-cn": "console.amazonaws.cn"}
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
# The console's own finding filter "Id EQUALS <id>", as the console writes it into its URL fragment.
_ID_FILTER = "#/findings?search=Id%3D%255Coperator%255C%253AEQUALS%255C%253A"


def _summary_values(finding: Finding) -> dict[str, str]:
    first: Resource | None = finding.resources[0] if finding.resources else None
    return {
        "title": finding.title, "severity": finding.severity_label, "product": finding.product_name,
        "company": finding.company_name, "account_id": finding.account_id,
        "account_name": finding.account_name, "region": finding.region, "control_id": finding.control_id,
        "generator_id": finding.generator_id, "resource_type": first.type if first else "",
        "resource_id": first.id if first else "", "finding_id": finding.id,
    }


def check_template(template: str) -> None:
    """Raise ValueError unless `template` only uses plain `SUMMARY_FIELDS` placeholders (no attribute or
    index access, no nested fields), so a bad config fails at start, not per finding."""
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if name not in SUMMARY_FIELDS:
            raise ValueError(f"summary template field {{{name}}} is not one of {', '.join(SUMMARY_FIELDS)}")
        if conversion not in (None, "s") or (spec and "{" in spec):
            raise ValueError(f"summary template field {{{name}}} may only take a plain format spec")


def summary(finding: Finding, template: str = "{title}") -> str:
    """One line of plain text (Jira does not render summaries as wiki), at most 255 UTF-16 units."""
    check_template(template)
    text = wiki.one_line(template.format_map(_summary_values(finding)))
    if not text:
        text = f"Security Hub finding {finding.key.digest}"
    return wiki.truncate(text, SUMMARY_LIMIT)


def console_url(finding: Finding) -> str:
    """Deep link to the finding in the Security Hub console of its own region and partition.

    The Id is URL-encoded twice, as the console itself does in its fragment. A region that is not an AWS
    region name (e.g. "test-region") is taken from the ProductArn, or left out (the console then uses its
    default region).
    """
    arn_parts = finding.key.product_arn.split(":")
    region = finding.region if _REGION.match(finding.region) else next(
        (part for part in arn_parts if _REGION.match(part)), "")
    partition = arn_parts[1] if len(arn_parts) > 1 and arn_parts[1] in _CONSOLE_HOSTS else (
        "aws-us-gov" if region.startswith("us-gov-") else "aws-cn" if region.startswith("cn-") else "aws")
    query = f"?region={region}" if region else ""
    ident = quote(quote(finding.id, safe=""), safe="")
    return f"https://{_CONSOLE_HOSTS[partition]}/securityhub/home{query}{_ID_FILTER}{ident}"


def _or_none(*parts: str) -> str:
    return " ".join(p for p in parts if p) or "\u2014"


def _paren(text: str) -> str:
    return f"({text})" if text else ""


def _details_rows(finding: Finding) -> list[tuple[str, str, int]]:
    severity = finding.severity_label + (
        f" (normalized {finding.severity_normalized})" if finding.severity_normalized is not None else "")
    compliance = _or_none(finding.compliance_status,
                          f"(control {finding.control_id})" if finding.control_id else "")
    return [
        ("Title", finding.title, _CELL_CAP),
        ("Severity", severity, _CELL_CAP),
        ("Product", _or_none(finding.product_name, _paren(finding.company_name)), _CELL_CAP),
        ("Account", _or_none(finding.account_id, _paren(finding.account_name)), _CELL_CAP),
        ("Region", finding.region, _CELL_CAP),
        ("Compliance", compliance, _CELL_CAP),
        ("Types", "; ".join(finding.types), _LONG_CELL_CAP),
        ("First observed", finding.first_observed_at, _CELL_CAP),
        ("Last observed", finding.last_observed_at, _CELL_CAP),
        ("Created", finding.created_at, _CELL_CAP),
        ("Updated", finding.updated_at, _CELL_CAP),
        ("Generator ID", finding.generator_id, _LONG_CELL_CAP),
        ("Finding ID", finding.id, _LONG_CELL_CAP),
        ("Product ARN", finding.key.product_arn, _LONG_CELL_CAP),
    ]


def _cell(value: str, cap: int) -> str:
    return wiki.truncate(wiki.escape_cell(value), cap)


def _details(finding: Finding, budget: int) -> str:
    lines = ["h3. Details"]
    used = wiki.jira_len(lines[0])
    for key, value, cap in _details_rows(finding):
        row = f"||{wiki.escape(key)}|{_cell(value, cap)}|"
        if used + 1 + wiki.jira_len(row) > budget:
            break
        lines.append(row)
        used += 1 + wiki.jira_len(row)
    return "\n".join(lines) if len(lines) > 1 else ""


def _description_text(finding: Finding, budget: int) -> str:
    text = wiki.escape(finding.description.strip())
    if not text:
        text = wiki.escape(f"No description provided by {wiki.one_line(finding.product_name)}.")
    return wiki.truncate(text, min(budget, _DESCRIPTION_CAP))


def _remediation(finding: Finding, budget: int) -> str:
    head = "h3. Remediation\n"
    product = wiki.one_line(finding.product_name)
    if not (finding.remediation_text.strip() or finding.remediation_url.strip()):
        section = head + wiki.escape(f"No remediation provided by {product}.")
        return section if wiki.jira_len(section) <= budget else ""
    url = finding.remediation_url.strip()
    link = wiki.link("Remediation guidance", url) if url else ""
    if wiki.jira_len(link) > _REMEDIATION_CAP:
        link = ""
    room = budget - wiki.jira_len(head) - (wiki.jira_len(link) + 1 if link else 0)
    text = wiki.escape(finding.remediation_text.strip())
    text = wiki.truncate(text, min(room, _REMEDIATION_CAP)) if room > 0 else ""
    body = "\n".join(part for part in (text, link) if part)
    section = head + body
    return section if body and wiki.jira_len(section) <= budget else ""


def _resource_row(resource: Resource) -> str:
    tags = ", ".join(f"{k}={v}" for k, v in resource.tags.items())
    values = (resource.type, resource.id, resource.region, resource.partition, tags)
    return "|" + "|".join(_cell(v, cap) for v, cap in zip(values, _RESOURCE_CAPS, strict=True)) + "|"


def _resources(finding: Finding, budget: int) -> str:
    total = len(finding.resources)
    lines = ["h3. Resources", "||Type||Id||Region||Partition||Tags||"]
    used = sum(wiki.jira_len(line) for line in lines) + 1

    def more(listed: int) -> str:
        return wiki.escape(f"\u2026and {total - listed} more resources not listed ({total} in total).")

    for i, resource in enumerate(finding.resources):
        row = _resource_row(resource)
        reserve = wiki.jira_len(more(i + 1)) + 1 if i + 1 < total else 0
        if used + 1 + wiki.jira_len(row) + reserve > budget:
            break
        lines.append(row)
        used += 1 + wiki.jira_len(row)
    listed = len(lines) - 2
    if listed == 0:
        return ""
    if listed < total:
        lines.append(more(listed))
    return "\n".join(lines)


def _footer(finding: Finding, console: str, budget: int) -> str:
    note = wiki.escape(f"sh2jira manages this issue: the label {finding.key.label} ties it to its Security "
                       "Hub finding, and sh2jira keeps the fields above in step with the finding.")
    view = wiki.link("View in Security Hub", console)
    full = f"{view}\n----\n{note}"
    if wiki.jira_len(full) <= budget:
        return full
    fallback = f"----\n{note}"
    if wiki.jira_len(fallback) <= budget:
        return fallback
    raise ValueError(f"description limit too small for the footer of finding {finding.key.digest}")


def description(finding: Finding, *, console_url: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """The issue description in wiki markup, at most `limit` UTF-16 units for any finding.

    Sections, in order: description, remediation, details table, resources table (first N, then how many
    more), console link and footer. Space is granted by priority: footer, details, description,
    remediation, resources; a section that does not fit is shortened or left out.
    """
    if limit < MIN_DESCRIPTION_LIMIT:
        raise ValueError(f"description limit must be at least {MIN_DESCRIPTION_LIMIT}, got {limit}")
    footer = _footer(finding, console_url, limit)
    remaining = limit - wiki.jira_len(footer)
    builders: list[tuple[str, Callable[[Finding, int], str]]] = [
        ("details", _details), ("text", _description_text), ("remediation", _remediation),
        ("resources", _resources)]
    built: dict[str, str] = {}
    for name, build in builders:
        section = build(finding, remaining - len(_SEP)) if remaining > len(_SEP) else ""
        built[name] = section
        if section:
            remaining -= wiki.jira_len(section) + len(_SEP)
    order = ("text", "remediation", "details", "resources")
    return _SEP.join([built[name] for name in order if built[name]] + [footer])


def due_comment(old_due: str, new_due: str, old_label: str, new_label: str) -> str:
    """The comment sh2jira adds when it moves an issue's due date earlier (it never moves one later, sla.py)."""
    why = (f"the severity rose from {wiki.escape(old_label)} to {wiki.escape(new_label)}"
           if old_label and old_label != new_label else "the finding now falls under a shorter SLA")
    # The dates are sh2jira's own (YYYY-MM-DD), never text from a finding.
    return (f"Due date moved earlier, from {old_due} to {new_due}: {why}. An SLA clock "
            "does not restart, so sh2jira never moves a due date later. \u2014 sh2jira")


def severity_comment(old_label: str, new_label: str, old_priority: str, new_priority: str) -> str:
    """The comment sh2jira adds when a finding's severity or the mapped priority changes (wiki markup)."""
    def value(text: str) -> str:
        return wiki.escape(wiki.one_line(text)) or "\u2014"

    if old_label == new_label:
        severity = f"Security Hub severity is {value(new_label)}"
    else:
        severity = f"Security Hub severity changed from {value(old_label)} to {value(new_label)}"
    if old_priority == new_priority:
        priority = f"the priority stays {value(new_priority)}"
    else:
        priority = f"so the priority changed from {value(old_priority)} to {value(new_priority)}"
    return f"{severity}; {priority}. \u2014 sh2jira"


def closure_comment(reason: str, when: str) -> str:
    """The comment on an issue sh2jira resolves because its finding went away (wiki markup)."""
    at = f" (at {wiki.escape(wiki.one_line(when))})" if when else ""
    return f"Resolved by sh2jira: {wiki.escape(wiki.one_line(reason))}{at}. \u2014 sh2jira"


def reopen_comment(finding: Finding) -> str:
    """The comment on an issue sh2jira reopens because its finding came back (wiki markup)."""
    facts = [f"record state {finding.record_state}", f"workflow {finding.workflow_status}"]
    if finding.compliance_status:
        facts.append(f"compliance {finding.compliance_status}")
    when = finding.updated_at or str(finding.raw.get("ProcessedAt") or "")
    at = f" at {wiki.escape(when)}" if when else ""
    return (f"Reopened by sh2jira: the finding came back in Security Hub{at} "
            f"({wiki.escape(', '.join(facts))}). \u2014 sh2jira")


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"fingerprint keys must be strings, got {type(key).__name__}")
            out[key] = _canonical(item)
        return out
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def fingerprint(fields: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of the owned fields: same content, same hash, whatever the key order
    (lists keep their order; sets are sorted), so the ledger can tell whether anything changed."""
    canonical = json.dumps(_canonical(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
