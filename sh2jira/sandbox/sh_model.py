"""botocore's Security Hub service model as the stand-in's source of truth for the wire protocol.

Routing uses each operation's `http.method` + `http.requestUri`; request parameters are read from the path,
query string, headers or JSON body exactly where the model's `location` says botocore put them. Nothing
about the wire format is hard-coded, so a newer botocore model keeps working.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from sh2jira.sandbox.sh_errors import ServiceError, invalid_input


@functools.cache
def service_model() -> ServiceModel:
    """The securityhub model shipped with the installed botocore (loaded once)."""
    return botocore.session.get_session().get_service_model("securityhub")


def shape(name: str) -> Shape:
    return service_model().shape_for(name)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    literal_chars: int
    operation: str


@functools.cache
def routes() -> tuple[Route, ...]:
    """One compiled route per operation; more literal characters win when two templates match."""
    out = []
    model = service_model()
    for name in model.operation_names:
        http = model.operation_model(name).http
        template = http["requestUri"].split("?", 1)[0]
        regex, literal = "", 0
        for part in re.split(r"(\{[^}]+\})", template):
            if part.startswith("{"):
                label = part[1:-1]
                greedy = label.endswith("+")
                label = label.rstrip("+")
                regex += f"(?P<{label}>.+)" if greedy else f"(?P<{label}>[^/]+)"
            else:
                regex += re.escape(part)
                literal += len(part)
        out.append(Route(http["method"].upper(), re.compile(f"^{regex}/?$"), literal, name))
    return tuple(sorted(out, key=lambda r: -r.literal_chars))


def match_route(method: str, raw_path: str) -> tuple[str, dict[str, str]] | None:
    """Operation name and (percent-decoded) URI labels for a request, or None."""
    for route in routes():
        if route.method != method.upper():
            continue
        found = route.pattern.match(raw_path)
        if found:
            return route.operation, {k: unquote(v) for k, v in found.groupdict().items()}
    return None


def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


def extract_input(op: OperationModel, labels: dict[str, str], query: dict[str, str],
                  headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Rebuild the operation's input parameters from where botocore serialized them."""
    params: dict[str, Any] = {}
    if body.strip():
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise ServiceError("SerializationException", f"request body is not JSON: {exc}") from exc
        if not isinstance(decoded, dict):
            raise ServiceError("SerializationException", "request body must be a JSON object")
        params.update(decoded)
    input_shape = op.input_shape
    if input_shape is None:
        return params
    lowered = {k.lower(): v for k, v in headers.items()}
    for member_name, member in input_shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", member_name)
        if location == "uri" and wire_name in labels:
            params[member_name] = _convert(member, labels[wire_name], member_name)
        elif location == "querystring" and wire_name in query:
            params[member_name] = _convert(member, query[wire_name], member_name)
        elif location == "header" and wire_name.lower() in lowered:
            params[member_name] = _convert(member, lowered[wire_name.lower()], member_name)
    return params


def _convert(member: Shape, raw: str, name: str) -> Any:
    if member.type_name in ("integer", "long"):
        try:
            return int(raw)
        except ValueError as exc:
            raise invalid_input(f"{name} must be an integer, got {raw!r}") from exc
    if member.type_name == "boolean":
        return raw.lower() == "true"
    return raw
