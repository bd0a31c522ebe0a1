"""Entities of the Jira stand-in and the site it starts with (project SEC, the default priorities, users).

Users are referred to by `handle` (their Data Center user name) inside the stand-in; the JSON side shows
`accountId` on Cloud and `name`/`key` on Data Center.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .jira_workflow import Workflow, default_workflow

FieldKind = Literal["string", "number", "labels"]


@dataclass(frozen=True)
class User:
    handle: str  # the Data Center user name
    account_id: str
    key: str
    display_name: str
    email: str
    api_token: str  # Cloud: Basic email:token
    pat: str  # Data Center: Bearer personal access token
    time_zone: str = "Etc/UTC"


@dataclass(frozen=True)
class Priority:
    id: str
    name: str
    color: str


@dataclass(frozen=True)
class IssueType:
    id: str
    name: str
    description: str = ""
    subtask: bool = False
    hierarchy_level: int = 0


@dataclass(frozen=True)
class Component:
    id: str
    name: str


@dataclass(frozen=True)
class CustomField:
    """A configurable field: "string" (single-line text, ≤ 255), "number" or "labels"."""

    id: str  # customfield_NNNNN
    name: str
    kind: FieldKind = "string"

    @property
    def number(self) -> int:
        return int(self.id.removeprefix("customfield_"))


@dataclass
class Project:
    id: str
    key: str
    name: str
    issue_types: list[str]  # ids
    components: list[Component]
    workflow: Workflow
    custom_fields: list[str]  # ids of the custom fields on this project's create and edit screens
    lead: str = "sh2jira-bot"


@dataclass
class Comment:
    id: str
    author: str
    body: str
    created: datetime
    updated: datetime
    adf: dict[str, Any] | None = None  # the document as posted through v3, returned as-is there


@dataclass
class RemoteLink:
    id: int
    object: dict[str, Any]
    global_id: str | None = None
    application: dict[str, Any] | None = None
    relationship: str | None = None


@dataclass(frozen=True)
class ChangeItem:
    field: str
    from_id: str | None
    from_string: str | None
    to_id: str | None
    to_string: str | None


@dataclass
class History:
    id: str
    author: str
    created: datetime
    items: list[ChangeItem]


@dataclass
class Issue:
    id: str
    key: str
    project: str  # project key
    issuetype: str  # id
    summary: str
    status: str  # status name in the project's workflow
    priority: str  # id
    reporter: str
    created: datetime
    updated: datetime
    status_changed: datetime
    description: str | None = None
    description_adf: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)  # ids
    assignee: str | None = None
    resolution: str | None = None  # id
    resolutiondate: datetime | None = None
    duedate: str | None = None  # YYYY-MM-DD, a date without time (as Jira keeps it)
    custom: dict[str, Any] = field(default_factory=dict)
    comments: list[Comment] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    remote_links: list[RemoteLink] = field(default_factory=list)
    histories: list[History] = field(default_factory=list)
    links: list[IssueLink] = field(default_factory=list)  # issue links, on both issues


@dataclass(frozen=True)
class IssueLinkType:
    id: str
    name: str
    inward: str
    outward: str


@dataclass(frozen=True)
class IssueLink:
    id: str
    type: str  # link type name
    inward: str  # key of the inward issue ("is duplicated by" side reads from the outward one)
    outward: str


# The link types every Jira site starts with.
LINK_TYPES: tuple[IssueLinkType, ...] = (
    IssueLinkType("10000", "Blocks", "is blocked by", "blocks"),
    IssueLinkType("10001", "Cloners", "is cloned by", "clones"),
    IssueLinkType("10002", "Duplicate", "is duplicated by", "duplicates"),
    IssueLinkType("10003", "Relates", "relates to", "relates to"),
)


DEFAULT_USERS: tuple[User, ...] = (
    User(
        "sh2jira-bot",
        "712020:5e6c0a5e-0000-4000-8000-000000000001",
        "JIRAUSER10100",
        "sh2jira bot",
        "sh2jira-bot@example.com",
        "cloud-token-sh2jira-bot",
        "dc-pat-sh2jira-bot",
    ),
    User(
        "alice",
        "712020:5e6c0a5e-0000-4000-8000-000000000002",
        "JIRAUSER10101",
        "Alice Triager",
        "alice@example.com",
        "cloud-token-alice",
        "dc-pat-alice",
    ),
    User(
        "bob",
        "712020:5e6c0a5e-0000-4000-8000-000000000003",
        "JIRAUSER10102",
        "Bob Engineer",
        "bob@example.com",
        "cloud-token-bob",
        "dc-pat-bob",
    ),
)

DEFAULT_PRIORITIES: tuple[Priority, ...] = (
    Priority("1", "Highest", "#d04437"),
    Priority("2", "High", "#f15C75"),
    Priority("3", "Medium", "#f79232"),
    Priority("4", "Low", "#707070"),
    Priority("5", "Lowest", "#999999"),
)
DEFAULT_PRIORITY = "3"

DEFAULT_ISSUE_TYPES: tuple[IssueType, ...] = (
    IssueType("10000", "Epic", "A big user story that needs to be broken down.", hierarchy_level=1),
    IssueType("10001", "Task", "A small, distinct piece of work."),
    IssueType("10002", "Bug", "A problem or error."),
    IssueType("10003", "Story", "Functionality or a feature expressed as a user goal."),
    IssueType(
        "10004",
        "Sub-task",
        "A small piece of work that's part of a larger task.",
        subtask=True,
        hierarchy_level=-1,
    ),
)

DEFAULT_CUSTOM_FIELDS: tuple[CustomField, ...] = (
    CustomField("customfield_10050", "Finding ID", "string"),
    CustomField("customfield_10051", "AWS Account", "string"),
    CustomField("customfield_10052", "Risk Score", "number"),
)

DEFAULT_COMPONENTS: tuple[str, ...] = ("Infrastructure", "Application", "Identity")


def default_project(
    project_id: str = "10000", key: str = "SEC", name: str = "Security", workflow: Workflow | None = None
) -> Project:
    """Project SEC: every default issue type, three components, the default custom fields on its screens."""
    return Project(
        id=project_id,
        key=key,
        name=name,
        issue_types=[t.id for t in DEFAULT_ISSUE_TYPES],
        components=[Component(str(10000 + i), n) for i, n in enumerate(DEFAULT_COMPONENTS)],
        workflow=workflow or default_workflow(),
        custom_fields=[f.id for f in DEFAULT_CUSTOM_FIELDS],
    )


@dataclass
class Catalog:
    """The site's configuration: who and what exists, looked up the ways the REST API refers to them."""

    users: dict[str, User] = field(default_factory=dict)  # by handle
    priorities: dict[str, Priority] = field(default_factory=dict)  # by id
    issue_types: dict[str, IssueType] = field(default_factory=dict)  # by id
    custom_fields: dict[str, CustomField] = field(default_factory=dict)  # by id
    projects: dict[str, Project] = field(default_factory=dict)  # by key

    @classmethod
    def default(cls) -> Catalog:
        project = default_project()
        return cls(
            users={u.handle: u for u in DEFAULT_USERS},
            priorities={p.id: p for p in DEFAULT_PRIORITIES},
            issue_types={t.id: t for t in DEFAULT_ISSUE_TYPES},
            custom_fields={f.id: f for f in DEFAULT_CUSTOM_FIELDS},
            projects={project.key: project},
        )

    def project(self, id_or_key: str) -> Project | None:
        return self.projects.get(id_or_key.upper()) or next(
            (p for p in self.projects.values() if p.id == id_or_key), None
        )

    def priority(self, ref: dict[str, Any]) -> Priority | None:
        if "id" in ref:
            return self.priorities.get(str(ref["id"]))
        return next((p for p in self.priorities.values() if p.name == ref.get("name")), None)

    def issue_type(self, ref: dict[str, Any]) -> IssueType | None:
        if "id" in ref:
            return self.issue_types.get(str(ref["id"]))
        return next((t for t in self.issue_types.values() if t.name == ref.get("name")), None)

    def user_by_account(self, account_id: str) -> User | None:
        return next((u for u in self.users.values() if u.account_id == account_id), None)

    def user_by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email.lower() == email.lower()), None)

    def user_by_pat(self, pat: str) -> User | None:
        return next((u for u in self.users.values() if u.pat == pat), None)
