"""Request plumbing shared by the Jira stand-in's handlers: the per-request context, replies and routes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request

from .jira_json import Render
from .jira_realism import Realism
from .jira_store import JiraFailure, JiraStore


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # None: no content
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    request: Request
    store: JiraStore
    realism: Realism
    user: str  # handle of the authenticated user
    version: str  # "2" or "3" ("latest" counts as "2")
    params: dict[str, str]
    jql: Callable[..., Any] | None = None

    @property
    def flavour(self) -> str:
        return self.store.flavour

    @property
    def render(self) -> Render:
        return Render(self.store, self.request.host_url, self.version)

    def body(self) -> Any:
        """The JSON body; Jira answers 400 to a body it cannot parse."""
        raw = self.request.get_data(cache=True)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise JiraFailure(400, ["Unexpected character in the request body: it is not valid JSON."]) from None

    def body_dict(self) -> dict[str, Any]:
        data = self.body()
        if data is None:
            raise JiraFailure(400, ["No content to map due to end-of-input"])
        if not isinstance(data, dict):
            raise JiraFailure(400, ["Can not deserialize instance of object out of START_ARRAY token"])
        return data

    def arg_list(self, name: str) -> list[str]:
        """A repeatable, comma-separable query parameter (fields, properties, expand)."""
        return [p for v in self.request.args.getlist(name) for p in v.split(",") if p]

    def int_arg(self, source: dict[str, Any], name: str, default: int) -> int:
        value = source.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise JiraFailure(400, [f"The value '{value}' is not valid for the parameter '{name}'."]) from None


Handler = Callable[[Ctx], Reply]


@dataclass
class Route:
    method: str
    template: str  # e.g. /rest/api/{v}/issue/{issueIdOrKey}
    handler: Handler
    flavours: frozenset[str] = frozenset({"cloud", "datacenter"})
    versions: frozenset[str] = frozenset({"2", "3", "latest"})
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{v\}", r"(?P<v>2|3|latest)", self.template)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        self.pattern = re.compile(f"^{regex}/?$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self.pattern.match(path)
        return found.groupdict() if found else None
