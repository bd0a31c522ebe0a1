"""Workflows of the Jira stand-in: statuses, their categories, transitions and resolutions.

Real sites rename transitions, drop "Reopen" or forget to clear the resolution, so sh2jira must find
transitions by id at run time and judge closure by status category. A project of the stand-in can be given
any `Workflow` to exercise that; `default_workflow()` is Jira's simplified software workflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

CategoryKey = Literal["new", "indeterminate", "done"]
ResolutionEffect = Literal["set", "clear", "keep"]


@dataclass(frozen=True)
class StatusCategory:
    id: int
    key: CategoryKey
    name: str
    color: str


CATEGORIES: dict[str, StatusCategory] = {
    "new": StatusCategory(2, "new", "To Do", "blue-gray"),
    "indeterminate": StatusCategory(4, "indeterminate", "In Progress", "yellow"),
    "done": StatusCategory(3, "done", "Done", "green"),
}


@dataclass(frozen=True)
class Status:
    id: str
    name: str
    category: CategoryKey
    description: str = ""

    @property
    def status_category(self) -> StatusCategory:
        return CATEGORIES[self.category]


@dataclass(frozen=True)
class Resolution:
    id: str
    name: str
    description: str


RESOLUTIONS: tuple[Resolution, ...] = (
    Resolution("10000", "Done", "Work has been completed on this issue."),
    Resolution("10001", "Won't Do", "This issue won't be actioned."),
    Resolution("10002", "Duplicate", "The problem is a duplicate of an existing issue."),
    Resolution("10003", "Cannot Reproduce", "All attempts at reproducing this issue failed."),
)


def find_resolution(ref: Mapping[str, object] | str | None) -> Resolution | None:
    """A resolution by {"name": ...} / {"id": ...} / plain name; None when it does not exist."""
    if ref is None:
        return None
    if isinstance(ref, str):
        ref = {"name": ref}
    for res in RESOLUTIONS:
        if ("id" in ref and str(ref["id"]) == res.id) or ("name" in ref and ref["name"] == res.name):
            return res
    return None


@dataclass(frozen=True)
class Transition:
    """A workflow transition. `sources` None means "from any other status" (a global transition).

    `resolution` says what the transition does to the resolution: "set" (the one posted, else `default`),
    "clear" (Reopen's post-function) or "keep" (the field is left alone, as many real workflows do).
    `screen` lists the fields the transition screen lets a caller set; anything else is a 400.
    """

    id: str
    name: str
    to: str
    sources: frozenset[str] | None = None
    resolution: ResolutionEffect = "keep"
    default_resolution: str = "Done"
    screen: frozenset[str] = field(default_factory=frozenset)

    def available_from(self, status: str) -> bool:
        if self.sources is None:
            return status != self.to
        return status in self.sources


class Workflow:
    """Statuses plus transitions; checks that every transition names statuses it has."""

    def __init__(self, statuses: Iterable[Status], transitions: Iterable[Transition], initial: str) -> None:
        self.statuses: dict[str, Status] = {s.name: s for s in statuses}
        self.transitions: list[Transition] = list(transitions)
        if initial not in self.statuses:
            raise ValueError(f"initial status {initial!r} is not in the workflow")
        ids = [t.id for t in self.transitions]
        if len(ids) != len(set(ids)):
            raise ValueError("transition ids must be unique")
        for t in self.transitions:
            unknown = ({t.to} | set(t.sources or ())) - set(self.statuses)
            if unknown:
                raise ValueError(f"transition {t.name!r} names unknown statuses {sorted(unknown)}")
        self.initial = initial

    def status(self, name: str) -> Status:
        return self.statuses[name]

    def available(self, status: str) -> list[Transition]:
        return [t for t in self.transitions if t.available_from(status)]

    def by_id(self, transition_id: str) -> Transition | None:
        return next((t for t in self.transitions if t.id == transition_id), None)

    def by_name(self, name: str) -> Transition | None:
        return next((t for t in self.transitions if t.name.lower() == name.lower()), None)


TO_DO = Status("10000", "To Do", "new")
IN_PROGRESS = Status("3", "In Progress", "indeterminate", "This issue is being actively worked on.")
DONE = Status("10001", "Done", "done")


def default_workflow(*, reopen: bool = True, rename: Mapping[str, str] | None = None) -> Workflow:
    """Jira's simplified workflow: To Do → In Progress → Done, Reopen from Done (optional).

    `rename` maps default transition names to site-specific ones (ids stay, as they do on real sites).
    """
    names = {
        "Start Progress": "Start Progress",
        "Done": "Done",
        "Stop Progress": "Stop Progress",
        "Reopen": "Reopen",
        **(rename or {}),
    }
    transitions = [
        Transition("11", names["Start Progress"], IN_PROGRESS.name, frozenset({TO_DO.name})),
        Transition(
            "21",
            names["Done"],
            DONE.name,
            frozenset({TO_DO.name, IN_PROGRESS.name}),
            resolution="set",
            screen=frozenset({"resolution"}),
        ),
        Transition("31", names["Stop Progress"], TO_DO.name, frozenset({IN_PROGRESS.name})),
    ]
    if reopen:
        transitions.append(Transition("41", names["Reopen"], TO_DO.name, frozenset({DONE.name}), resolution="clear"))
    return Workflow([TO_DO, IN_PROGRESS, DONE], transitions, initial=TO_DO.name)
