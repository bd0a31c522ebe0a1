"""Drives the retry queue at the start of each cycle: every due item is tried again, whether or not its finding
shows up in this cycle's read.

- create / update / comment / transition: the finding is fetched by id and planned afresh, so the retry does
  what is right *now* (a finding that came back is not resolved by a stale retry; an update carries today's
  fields). An intent whose create had an unknown outcome (CREATING) is left to the label search of
  `Syncer._recover`, which never re-sends blindly; the row only reports it until it is settled.
- finding_write (a Jira-side resolution or reopening Security Hub did not take): sent again as recorded, unless
  the ledger shows that something newer happened to that finding since.
- remote_link: sent again (an upsert by global id, safe to repeat).
- linkback: the link-back writer itself retries pending link-backs when their row is due; here only rows whose
  link-back is no longer pending are cleared.
- group_refresh: a group issue's refresh that failed: its group is marked touched, so the cycle's end refreshes
  it (group_sync.py); the row goes once that succeeds.
- min_age: a finding that was too young to ticket, now of age (by the cycle's `now`, the clock the planner
  judged its age by): fetched by id and planned afresh. Still active → ticketed; archived, passed or resolved
  meanwhile → skipped; no longer in Security Hub → dropped. Never an error: the row only says when to look.
A row whose item succeeds, or turns out to be no longer needed, is removed; one that fails again gets its next
back-off. Systemic failures (Jira refused the token, Jira unreachable) end the cycle as they would anywhere.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .failures import is_systemic, item_error
from .groups import is_group_key
from .ledger import CLOSED, CREATING, FAILED, OPEN, RetryItem
from .ocsf import raw_key
from .retry_queue import FINDING_KINDS, MIN_AGE, when
from .securityhub import SCOPE_UNAVAILABLE, ScopeUnavailable

if TYPE_CHECKING:
    from .sync import CycleReport, Syncer

log = logging.getLogger(__name__)


def drive(syncer: Syncer, report: CycleReport) -> None:
    """Retry what is due; then note in the report what still waits (so the run's exit code says so)."""
    if syncer.opt.dry_run:
        return
    queue = syncer.retry
    queue.begin()
    clock, now = queue.clock(), syncer.now().timestamp()
    due = [i for i in syncer.ledger.due_retries(max(clock, now))
           if i.next_try <= (now if i.kind == MIN_AGE else clock)]
    by_kind: dict[str, list[RetryItem]] = defaultdict(list)
    for item in due:
        by_kind["finding" if item.kind in FINDING_KINDS else item.kind].append(item)
    if len(due) > len(by_kind[MIN_AGE]):
        log.info("retrying %d item(s) from the retry queue", len(due) - len(by_kind[MIN_AGE]))
    _of_age(syncer, report, by_kind[MIN_AGE])
    _findings(syncer, report, by_kind["finding"])
    _finding_writes(syncer, by_kind["finding_write"])
    _remote_links(syncer, by_kind["remote_link"])
    _linkbacks(syncer, by_kind["linkback"])
    syncer.groups.due(i.key for i in by_kind["group_refresh"])
    later = {i.item for i in by_kind["group_refresh"]}  # tried at the cycle's end: reported then if they fail
    waiting = [i for i in queue.stuck() if i.item not in queue.failed_now and i.item not in later]
    if waiting:
        first = min(i.next_try for i in waiting)
        kinds = ", ".join(sorted({i.kind for i in waiting}))
        report.errors.append(f"{len(waiting)} item(s) from earlier cycles wait for a retry ({kinds}; next at "
                             f"{when(first)})")


def _findings(syncer: Syncer, report: CycleReport, items: list[RetryItem]) -> None:
    if not items:
        return
    queue = syncer.retry
    entries = syncer.ledger.get(i.key for i in items)
    by_region: dict[str, list[RetryItem]] = defaultdict(list)
    done: list[str] = []
    for item in items:
        entry = entries.get(item.key)
        if entry is None or is_group_key(entry.key) \
                or (item.kind == "create" and entry.state not in (FAILED, CREATING)):
            # (a group's create is retried through its members, which are findings)
            done.append(item.item)  # created (or adopted) meanwhile, or forgotten: nothing left to retry
        elif entry.state == CREATING:
            continue  # outcome unknown: Syncer._recover looks for its label; never re-sent blindly
        else:
            by_region[item.region or entry.region or syncer.opt.regions[0]].append(item)
    syncer.ledger.drop_retries(done)
    for region, group in by_region.items():
        ids = [(entries[i.key].finding_id, entries[i.key].product_arn) for i in group]
        try:
            raw = syncer.hub.by_ids(region, ids)
        except ScopeUnavailable:
            continue  # the scope is reported with the cycle; the rows wait for it
        present = {(k.id, k.product_arn) for f in raw if (k := raw_key(f)) is not None}  # ASFF or OCSF
        for item in group:
            e = entries[item.key]
            if (e.finding_id, e.product_arn) not in present:
                log.warning("finding %s is no longer in Security Hub: its %s is not retried", e.finding_id,
                            item.kind, extra={"finding_id": e.finding_id, "issue_key": e.issue_key})
        syncer._apply(syncer._plan(syncer._parse(raw, report)), region, report)
        # Retried rows that did not fail again are settled: done, or no longer wanted by the fresh plan.
        syncer.ledger.drop_retries(i.item for i in group if i.item not in queue.failed_now)


def _of_age(syncer: Syncer, report: CycleReport, items: list[RetryItem]) -> None:
    """Findings whose min_age has passed: read by id and planned as new (the plan may make them wait again)."""
    if not items:
        return
    # Ticketed meanwhile (a later read): an issue, or an intent that _recover settles. A FAILED create keeps its wait.
    entries = {k: e for k, e in syncer.ledger.get(i.key for i in items).items()
               if e.state in (OPEN, CLOSED, CREATING)}
    syncer.ledger.drop_retries(i.item for i in items if i.key in entries)
    by_region: dict[str, list[RetryItem]] = defaultdict(list)
    for item in items:
        if item.key not in entries:
            by_region[item.region or syncer.opt.regions[0]].append(item)
    for region, group in by_region.items():
        ids = [(i.finding_id, str(json.loads(i.payload or "{}").get("product_arn", ""))) for i in group]
        try:
            raw = syncer.hub.by_ids(region, ids)
        except ScopeUnavailable:
            continue  # the scope is reported with the cycle; the rows wait for it
        present = {(k.id, k.product_arn) for f in raw if (k := raw_key(f)) is not None}
        for item, ident in zip(group, ids, strict=True):
            if ident not in present:
                log.info("finding %s went away before its min_age: no issue", item.finding_id,
                         extra={"finding_id": item.finding_id})
        log.info("%d finding(s) reached their min_age", len(present))
        syncer._apply(syncer._planned(syncer._parse(raw, report), region, report), region, report)
        # Settled only once the fresh plan's outcome is recorded (an intent, an issue, a skip, or a new wait, whose
        # row was written again with a later time): a failure or a kill before this point keeps the wait.
        again = syncer.ledger.retries(i.item for i in group)
        syncer.ledger.drop_retries(i.item for i in group
                                   if (row := again.get(i.item)) is None or row.next_try <= i.next_try)


def _finding_writes(syncer: Syncer, items: list[RetryItem]) -> None:
    if not items:
        return
    entries = syncer.ledger.get(i.key for i in items)
    for item in items:
        payload: dict[str, Any] = json.loads(item.payload or "{}")
        entry = entries.get(item.key)
        if entry is None or entry.issue_key != item.issue_key or entry.state != payload.get("from_state"):
            syncer.ledger.drop_retries([item.item])  # something newer happened to this finding
            continue
        region = item.region or entry.region or syncer.opt.regions[0]
        ids = [{"Id": entry.finding_id, "ProductArn": entry.product_arn}]
        try:
            with syncer.linkback.lock:
                failed = syncer.hub.update(region, ids, payload["values"])
                if not failed:
                    syncer.ledger.put([entry.with_(state=payload["state"], linkback_pending=False)])
        except Exception as exc:  # noqa: BLE001 - an AWS error for this one write: it waits again
            if is_systemic(exc):
                raise
            syncer.retry.failed("finding_write", entry, item_error(exc), payload=payload)
            continue
        if failed and failed[0].code != SCOPE_UNAVAILABLE:
            syncer.retry.failed("finding_write", entry, f"{failed[0].code} {failed[0].message}".strip(),
                                payload=payload)
        elif not failed:
            syncer.retry.succeeded("finding_write", [entry.key])
            log.info("finding %s set %s from Jira issue %s (retried)", entry.finding_id, payload.get("kind"),
                     entry.issue_key, extra={"finding_id": entry.finding_id, "issue_key": entry.issue_key})


def _remote_links(syncer: Syncer, items: list[RetryItem]) -> None:
    for item in items:
        payload: dict[str, Any] = json.loads(item.payload or "{}")
        try:
            syncer.sink.remote_link(item.issue_key, payload["global_id"], payload["url"], payload["title"])
        except Exception as exc:  # noqa: BLE001 - isolated per item
            if is_systemic(exc):
                raise
            syncer.retry.failed("remote_link", None, item_error(exc), key=item.key, payload=payload)
            continue
        syncer.retry.succeeded("remote_link", [item.key])


def _linkbacks(syncer: Syncer, items: list[RetryItem]) -> None:
    if not items:
        return
    entries = syncer.ledger.get(i.key for i in items)
    settled = [i.item for i in items if (e := entries.get(i.key)) is None or not e.linkback_pending
               or e.state not in (OPEN, CLOSED)]
    syncer.ledger.drop_retries(settled)
