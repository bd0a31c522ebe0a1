"""Regression found in review (thread safety): the background link-back writer and the main loop's Jira-side write
to the same finding. The stand-ins and clients are real; only the interleaving of the two threads is forced."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from tests.e2e.world import NOW, World, finding, fresh, sandbox, world  # noqa: F401


def test_jira_side_resolution_is_not_undone_by_an_in_flight_link_back(world: World) -> None:
    doc = fresh(finding(0), NOW - timedelta(hours=1))
    assert world.import_findings([doc])["FailedFindings"] == []
    assert world.cycle().created == 1
    key = world.issue_for(doc["Id"], doc["ProductArn"])["key"]
    # The resource flaps: archived, then active again. Security Hub resets the workflow to NEW, so the next
    # cycle writes the link-back again (README), while a triager resolves the issue in Jira.
    for state, minutes in (("ARCHIVED", 50), ("ACTIVE", 40)):
        sent = fresh({**doc, "RecordState": state}, NOW - timedelta(minutes=minutes))
        assert world.import_findings([sent])["FailedFindings"] == []
    assert world.finding(doc["Id"])["Workflow"]["Status"] == "NEW"
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done", as_user="alice")

    syncer = world.syncer()
    real_update = syncer.hub.update
    linkback_started, jira_side_written = threading.Event(), threading.Event()

    def update(region: str, ids: Any, values: Any) -> Any:
        if threading.current_thread().name == "sh2jira-linkback":
            linkback_started.set()
            jira_side_written.wait(10)  # the link-back call is slow to reach Security Hub
            return real_update(region, ids, values)
        linkback_started.wait(10)
        try:
            return real_update(region, ids, values)
        finally:
            jira_side_written.set()

    syncer.hub.update = update  # type: ignore[method-assign,assignment]
    syncer.run_cycle()
    assert linkback_started.is_set()
    world.cycle()  # a later cycle does not repair it either
    found = world.finding(doc["Id"])
    assert found["Workflow"]["Status"] == "RESOLVED", (found["Workflow"], found.get("UserDefinedFields"))
