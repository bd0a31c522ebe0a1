"""Server-side validation of requests and ASFF findings against botocore's Security Hub model.

botocore only checks required members, unknown members, types and minimums on the client, and only when
parameter validation is on. The real API checks more: enums, maximum lengths and list sizes, ASFF timestamp
formats, a 12-digit AwsAccountId. Constraints come from the model (metadata and the API reference sentences
it carries, e.g. "Length Constraints: Minimum length of 1. Maximum length of 256.") plus a short table of
documented limits the model text lacks. Messages imitate the real service ("data.Title should NOT be longer
than 256 characters") so callers see the same reasons.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from botocore.model import OperationModel, Shape

from sh2jira.sandbox.sh_model import shape

MAX_PROBLEMS = 10
_NON_BLANK = ".*\\S.*"
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|([+-])(\d{2})(?::?(\d{2}))?)$")
_TYPES_PATTERN = "^([^/]+)(/[^/]+){0,2}$"


@dataclass(frozen=True)
class Constraints:
    """What one member must satisfy beyond its type."""

    min_len: int | None = None
    max_len: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    timestamp: bool = False
    key_max_len: int | None = None
    item: Constraints | None = field(default=None)


NONE = Constraints()
# Map values (ProductFields, UserDefinedFields, tags) may be empty strings: real GuardDuty findings carry
# ProductFields values of "" although the model's value shape says NonEmptyString. pattern="" = no pattern.
_MAP_VALUE = Constraints(pattern="")

# Documented limits that the model's text does not carry, keyed by (structure shape name, member name).
_EXTRA: dict[tuple[str, str], Constraints] = {
    ("AwsSecurityFinding", "AwsAccountId"): Constraints(pattern="^[0-9]{12}$"),
    ("AwsSecurityFinding", "ProductArn"): Constraints(
        pattern=r"^arn:aws[a-z-]*:securityhub:[a-z0-9-]*:[0-9]{0,12}:product/[^/:]+/[^/:]+$"),
    ("AwsSecurityFinding", "Types"): Constraints(item=Constraints(pattern=_TYPES_PATTERN)),
    ("FindingProviderFields", "Types"): Constraints(item=Constraints(pattern=_TYPES_PATTERN)),
    ("BatchUpdateFindingsRequest", "Types"): Constraints(item=Constraints(pattern=_TYPES_PATTERN)),
    ("AwsSecurityFinding", "Confidence"): Constraints(minimum=0, maximum=100),
    ("AwsSecurityFinding", "Criticality"): Constraints(minimum=0, maximum=100),
    ("Severity", "Normalized"): Constraints(minimum=0, maximum=100),
    ("Recommendation", "Text"): Constraints(max_len=512),
    ("Note", "Text"): Constraints(max_len=512),
    ("Note", "UpdatedBy"): Constraints(max_len=512),
    ("NoteUpdate", "Text"): Constraints(max_len=512),
    ("NoteUpdate", "UpdatedBy"): Constraints(max_len=512),
    ("AwsSecurityFinding", "UserDefinedFields"): Constraints(
        max_items=50, key_max_len=128, item=Constraints(max_len=1024, pattern="")),
    ("BatchUpdateFindingsRequest", "UserDefinedFields"): Constraints(
        max_items=50, key_max_len=128, item=Constraints(max_len=1024, pattern="")),
}


def parse_timestamp(text: str) -> datetime | None:
    """An ASFF timestamp (Z or ±HH[:MM] offset up to 18:00, ≤ 9 fraction digits) as aware datetime."""
    found = _TIMESTAMP.match(text)
    if not found:
        return None
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    fraction = found.group(7) or "."
    micros = int((fraction[1:] + "000000")[:6])
    offset = timedelta(0)
    if found.group(8) != "Z":
        off_h, off_m = int(found.group(10)), int(found.group(11) or 0)
        if off_m >= 60 or off_h * 60 + off_m > 18 * 60:
            return None
        offset = timedelta(hours=off_h, minutes=off_m) * (-1 if found.group(9) == "-" else 1)
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=timezone(offset))
    except ValueError:
        return None


def format_timestamp(moment: datetime) -> str:
    """How the stand-in writes timestamps (ProcessedAt, Note.UpdatedAt): UTC, milliseconds, Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _doc_constraints(doc: str) -> dict[str, Any]:
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", doc or ""))
    found: dict[str, Any] = {}
    if m := re.search(r"Length Constraints: Minimum (?:length )?of (\d+)", text):
        found["min_len"] = int(m.group(1))
    m = re.search(r"Maximum length of (\d+)", text) or re.search(r"Length Constraints: (\d+)\.", text)
    if m:
        found["max_len"] = int(m.group(1))
    if m := re.search(r"Array Members: Minimum number of (\d+) items?", text):
        found["min_items"] = int(m.group(1))
    if m := re.search(r"Array Members:[^.]*?Maximum number of (\d+) items?", text) or re.search(
            r"Array Members: Minimum number of \d+ items?\. Maximum number of (\d+)", text):
        found["max_items"] = int(m.group(1))
    if "timestamp fields" in text or "accepts only the specified formats" in text:
        found["timestamp"] = True
    return found


@functools.cache
def _member_constraints(parent_name: str, member_name: str) -> Constraints:
    parent = shape(parent_name)
    member = parent.members[member_name]
    meta = member.metadata
    values: dict[str, Any] = _doc_constraints(member.documentation)
    if member.type_name == "string":
        values.setdefault("min_len", meta.get("min"))
        values.setdefault("max_len", meta.get("max"))
        values["pattern"] = meta.get("pattern")
    elif member.type_name in ("list", "map"):
        values.setdefault("min_items", meta.get("min"))
        values.setdefault("max_items", meta.get("max"))
    elif member.type_name in ("integer", "long", "double", "float"):
        values["minimum"], values["maximum"] = meta.get("min"), meta.get("max")
    if member.type_name != "string":
        values.pop("timestamp", None)
    result = Constraints(**{k: v for k, v in values.items() if v is not None})
    extra = _EXTRA.get((parent_name, member_name))
    if extra is not None:
        overrides = {k: v for k, v in extra.__dict__.items() if v is not None and v is not False}
        result = replace(result, **overrides)
    return result


def _with_shape_metadata(shp: Shape, rules: Constraints) -> Constraints:
    """List members and map values have no member documentation: their shape's own metadata applies."""
    meta = shp.metadata
    own: dict[str, Any] = {}
    if shp.type_name == "string":
        own = {"min_len": meta.get("min"), "max_len": meta.get("max"), "pattern": meta.get("pattern")}
    elif shp.type_name in ("list", "map"):
        own = {"min_items": meta.get("min"), "max_items": meta.get("max")}
    elif shp.type_name in ("integer", "long", "double", "float"):
        own = {"minimum": meta.get("min"), "maximum": meta.get("max")}
    missing = {k: v for k, v in own.items() if v is not None and getattr(rules, k) is None}
    return replace(rules, **missing) if missing else rules


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)

    def check(self, shp: Shape, value: Any, path: str, rules: Constraints) -> None:
        kind = shp.type_name
        rules = _with_shape_metadata(shp, rules)
        if kind == "structure":
            self._structure(shp, value, path)
        elif kind == "list":
            self._list(shp, value, path, rules)
        elif kind == "map":
            self._map(shp, value, path, rules)
        elif kind == "string":
            self._string(shp, value, path, rules)
        elif kind in ("integer", "long"):
            integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            if isinstance(value, bool) or not integral:
                self.add(f"{path} should be integer")
            else:
                self._range(value, path, rules)
        elif kind in ("double", "float"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.add(f"{path} should be number")
            else:
                self._range(value, path, rules)
        elif kind == "boolean" and not isinstance(value, bool):
            self.add(f"{path} should be boolean")

    def _structure(self, shp: Shape, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.add(f"{path} should be object")
            return
        for required in shp.metadata.get("required", []):
            if required not in value:
                self.add(f"{path} should have required property '{required}'".lstrip())
        members = shp.members
        for key, item in value.items():
            if key not in members:
                self.add(f"{path} should NOT have additional properties ('{key}')".lstrip())
                continue
            child = f"{path}.{key}" if path else key
            self.check(members[key], item, child, _member_constraints(shp.name, key))

    def _list(self, shp: Shape, value: Any, path: str, rules: Constraints) -> None:
        if not isinstance(value, list):
            self.add(f"{path} should be array")
            return
        if rules.min_items is not None and len(value) < rules.min_items:
            self.add(f"{path} should NOT have fewer than {rules.min_items} items")
        if rules.max_items is not None and len(value) > rules.max_items:
            self.add(f"{path} should NOT have more than {rules.max_items} items")
        for i, item in enumerate(value):
            self.check(shp.member, item, f"{path}[{i}]", rules.item or NONE)

    def _map(self, shp: Shape, value: Any, path: str, rules: Constraints) -> None:
        if not isinstance(value, dict):
            self.add(f"{path} should be object")
            return
        if rules.max_items is not None and len(value) > rules.max_items:
            self.add(f"{path} should NOT have more than {rules.max_items} properties")
        for key, item in value.items():
            child = f"{path}['{key}']"
            if rules.key_max_len is not None and len(key) > rules.key_max_len:
                self.add(f"{child} key should NOT be longer than {rules.key_max_len} characters")
            self.check(shp.value, item, child, rules.item or _MAP_VALUE)

    def _string(self, shp: Shape, value: Any, path: str, rules: Constraints) -> None:
        if not isinstance(value, str):
            self.add(f"{path} should be string")
            return
        enum = shp.metadata.get("enum")
        if enum and value not in enum:
            self.add(f"{path} should be equal to one of the allowed values: {', '.join(enum)}")
            return
        min_len = rules.min_len if rules.min_len is not None else (1 if rules.pattern == _NON_BLANK else None)
        if min_len is not None and len(value) < min_len:
            self.add(f"{path} should NOT be shorter than {min_len} characters")
            return
        if rules.max_len is not None and len(value) > rules.max_len:
            self.add(f"{path} should NOT be longer than {rules.max_len} characters")
        if rules.pattern == _NON_BLANK:
            if not value.strip():
                self.add(f'{path} should match pattern "{_NON_BLANK}"')
        elif rules.pattern and not re.search(rules.pattern, value):
            self.add(f'{path} should match pattern "{rules.pattern}"')
        if rules.timestamp and parse_timestamp(value) is None:
            self.add(f'{path} should match format "date-time" (ASFF timestamp such as 2024-01-31T23:00:00Z)')

    def _range(self, value: float, path: str, rules: Constraints) -> None:
        if rules.minimum is not None and value < rules.minimum:
            self.add(f"{path} should be >= {rules.minimum:g}")
        if rules.maximum is not None and value > rules.maximum:
            self.add(f"{path} should be <= {rules.maximum:g}")


def validate_finding(doc: Any) -> list[str]:
    """Problems with one ASFF finding, `data.`-prefixed as the real API reports them (empty = valid)."""
    checker = _Checker()
    checker.check(shape("AwsSecurityFinding"), doc, "data", NONE)
    return checker.problems


def validate_request(op: OperationModel, params: dict[str, Any],
                     shallow: frozenset[str] = frozenset()) -> list[str]:
    """Problems with an operation's input; members named in `shallow` get only their list-level checks."""
    input_shape = op.input_shape
    if input_shape is None:
        return []
    checker = _Checker()
    for required in input_shape.metadata.get("required", []):
        if required not in params:
            checker.add(f"Missing required parameter: {required}")
    for key, value in params.items():
        if key not in input_shape.members:
            checker.add(f"Unknown parameter: {key}")
            continue
        rules = _member_constraints(input_shape.name, key)
        member = input_shape.members[key]
        if key in shallow and member.type_name == "list":
            if not isinstance(value, list):
                checker.add(f"{key} should be array")
                continue
            count = len(value)
            if rules.min_items is not None and count < rules.min_items:
                checker.add(f"{key} should NOT have fewer than {rules.min_items} items")
            if rules.max_items is not None and count > rules.max_items:
                checker.add(f"{key} should NOT have more than {rules.max_items} items")
            continue
        checker.check(member, value, key, rules)
    return checker.problems
