"""Event mode: EventBridge → SQS → the same planning and writing path as the poller, within seconds.

Why SQS and not a push endpoint: the queue keeps events while sh2jira restarts or a replica takes over, its
visibility timeout retries what failed, and its redrive policy parks what can never be handled in a dead-letter
queue. So a message is deleted only after the ledger recorded the outcome of its findings (an issue, an update, a
skip, or a write waiting in the retry queue); a cycle that could not write (Jira unreachable, the lease lost) deletes
nothing, and the messages come back after the visibility timeout.

- **Only the lease holder consumes.** Events are read in the pause between polling cycles of long-running mode,
  on the same thread, so one replica writes at a time and a standby leaves the queue alone.
- **Duplicates and out-of-order events are harmless.** A finding whose `UpdatedAt` is older than the ledger's
  `finding_updated_at` is dropped (the newest wins); the same version twice plans to "unchanged". Within one batch
  the newest copy of each finding is kept.
- **A malformed message** (not JSON, not a Security Hub finding event, or no finding in it that parses) is logged
  with its message id and receive count and made visible again at once, never deleted: after the queue's
  `maxReceiveCount` SQS moves it to the dead-letter queue, where it can be looked at.
- **Scope.** A finding is written under the scope the poller reads it from: its region, `<account>/<region>` with
  `securityhub.accounts`, the home region with aggregation, `v2:`… for a "Findings Imported V2" event. A finding
  outside the configured scopes (another account or region, or a source not read) is left alone, and so is one the
  ledger tracks under another scope (the other Security Hub drives it: sources.py); the poller decides those.
- **Polling stays on** (`events.poll_interval_seconds`, 900 s by default) as the safety net for lost events and for
  what sends no event (a closure made in Jira, a console change BatchUpdateFindings makes without an UpdatedAt).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .finding import Finding
from .lease import LeaseHeld
from .securityhub import parse_iso
from .securityhub_v2 import base_scope, v2_scope
from .sync import CycleReport, Syncer

log = logging.getLogger(__name__)

CSPM_EVENT, V2_EVENT = "Security Hub Findings - Imported", "Findings Imported V2"
EVENT_TYPES = (CSPM_EVENT, V2_EVENT)
BATCH = 10  # ReceiveMessage and DeleteMessageBatch take at most 10
REPORTS_KEPT = 100  # EventConsumer.reports: the latest batches only


class MalformedMessage(ValueError):
    """The message is not a Security Hub finding event sh2jira can act on."""


@dataclass(frozen=True)
class Event:
    """The findings of one message, and whether they came from the new Security Hub (OCSF)."""

    v2: bool
    findings: list[dict[str, Any]]


def parse_message(body: str) -> Event:
    """An EventBridge event as SQS delivers it (the event JSON is the body); MalformedMessage names what is wrong."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"the body is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(doc, dict):
        raise MalformedMessage(f"the body is a JSON {type(doc).__name__}, not an EventBridge event")
    kind = doc.get("detail-type")
    if kind not in EVENT_TYPES:
        raise MalformedMessage(f"detail-type {kind!r} is not one of {', '.join(map(repr, EVENT_TYPES))}")
    if doc.get("source") != "aws.securityhub":
        raise MalformedMessage(f"source {doc.get('source')!r} is not 'aws.securityhub'")
    detail = doc.get("detail")
    findings = detail.get("findings") if isinstance(detail, dict) else None
    if not isinstance(findings, list) or not findings or not all(isinstance(f, dict) for f in findings):
        raise MalformedMessage("detail.findings is not a non-empty list of findings")
    return Event(kind == V2_EVENT, findings)


def scope_of(finding: Finding, *, v2: bool, scopes: Sequence[str], aggregation: bool, by_account: bool) -> str | None:
    """The scope the poller would read this finding under, or None when it reads no such scope."""
    region = base_scope(scopes[0]).rpartition("/")[2] if aggregation and scopes else finding.region
    base = f"{finding.account_id}/{region}" if by_account else region
    scope = v2_scope(base) if v2 else base
    return scope if scope in scopes else None


def newest(findings: Iterable[Finding]) -> list[Finding]:
    """One copy per finding: the one with the newest UpdatedAt (a batch may carry a finding several times)."""
    best: dict[str, Finding] = {}
    for f in findings:
        seen = best.get(f.key.digest)
        if seen is None or _ts(f.updated_at) >= _ts(seen.updated_at):
            best[f.key.digest] = f
    return list(best.values())


def _ts(text: str) -> float:
    parsed = parse_iso(text or "")
    return parsed.timestamp() if parsed else 0.0


def queue_region(url: str) -> str | None:
    """The region in a queue URL (https://sqs.eu-west-1.amazonaws.com/…), if it names one."""
    m = re.match(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/", url)
    return m.group(1) if m else None


class EventConsumer:
    """Reads the queue between polling cycles (`idle` is the Runner's pause) and acts through the Syncer."""

    def __init__(self, syncer: Syncer, client: Any, queue_url: str, *, scopes: Sequence[str], aggregation: bool,
                 by_account: bool, wait_seconds: int = 20, stop: threading.Event | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.syncer = syncer
        self.client = client
        self.queue_url = queue_url
        self.scopes = list(scopes)
        self.aggregation = aggregation
        self.by_account = by_account
        self.wait_seconds = wait_seconds
        self.stop = stop or threading.Event()
        self.monotonic = monotonic
        # The latest batches' reports, for tests: bounded, as a consumer runs for months (one report per batch).
        self.reports: deque[CycleReport] = deque(maxlen=REPORTS_KEPT)

    def idle(self, seconds: float) -> None:
        """Consume events for `seconds` (or until stopped). A replica that does not hold the lease only waits."""
        deadline = self.monotonic() + seconds
        while not self.stop.is_set():
            left = deadline - self.monotonic()
            if left <= 0:
                return
            lease = self.syncer.lease
            if lease is not None and not lease.held:
                self.stop.wait(left)
                return
            try:
                self.receive(max(1, min(self.wait_seconds, int(left))))
            except LeaseHeld as exc:
                log.info("events: %s", exc)
                self.stop.wait(left)
                return
            except Exception as exc:  # noqa: BLE001 - messages not deleted come back; the poller is the net
                log.error("events: could not be handled (%s: %s); the messages come back after their visibility "
                          "timeout", type(exc).__name__, str(exc).split("\n", 1)[0][:300])
                self.stop.wait(min(left, 30.0))

    def receive(self, wait: int) -> CycleReport | None:
        """One long poll; the messages it got are handled and deleted once the ledger recorded them."""
        answer = self.client.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=wait,
                                             MessageSystemAttributeNames=["ApproximateReceiveCount"])
        messages = answer.get("Messages") or []
        return self.handle(messages) if messages else None

    def handle(self, messages: list[dict[str, Any]]) -> CycleReport:
        report = CycleReport()
        by_scope: dict[str, list[Finding]] = {}
        done: list[dict[str, Any]] = []
        for m in messages:
            try:
                event = parse_message(str(m.get("Body", "")))
                findings = self.syncer._parse(event.findings, report)
                if not findings:
                    raise MalformedMessage("no finding in it could be read (see the warnings above)")
            except MalformedMessage as exc:
                self._poison(m, exc)
                continue
            for f in findings:
                scope = scope_of(f, v2=event.v2, scopes=self.scopes, aggregation=self.aggregation,
                                 by_account=self.by_account)
                if scope is None:
                    log.info("events: finding %s (account %s, region %s) is outside the scopes read; left alone",
                             f.id, f.account_id, f.region, extra={"finding_id": f.id})
                    continue
                by_scope.setdefault(scope, []).append(f)
            done.append(m)
        if by_scope:
            self._act(by_scope, report)
        self._delete(done)
        if done:
            log.info("events: %d message(s): %s", len(done), report.summary())
        self.reports.append(report)
        return report

    def _act(self, by_scope: dict[str, list[Finding]], report: CycleReport) -> None:
        """Plan and write, scope by scope, through the poller's path; raises what stops a cycle (nothing is
        deleted then)."""
        s = self.syncer
        if s.lease is not None and not s.lease.held:
            raise LeaseHeld("another instance (this one does not hold the lease)")
        s.linkback.start()
        try:
            for scope, found in by_scope.items():
                findings = self._fresh(newest(found), scope)
                if findings:
                    s._apply(s._planned(findings, scope, report), scope, report)
            s.groups.flush(report)  # a batch of events is a cycle of its own for its groups' issues
        finally:
            s.linkback.stop()
        if s.linkback.error is not None:
            error, s.linkback.error = s.linkback.error, None
            raise error

    def _fresh(self, findings: list[Finding], scope: str) -> list[Finding]:
        """Drop what the ledger already holds a newer version of, or holds under another scope."""
        known = self.syncer.ledger.get(f.key.digest for f in findings)
        out = []
        for f in findings:
            entry = known.get(f.key.digest)
            if entry is not None and entry.region and entry.region != scope:
                log.debug("events: finding %s is tracked under %s; left to the poller", f.id, entry.region,
                          extra={"finding_id": f.id})
            elif entry is not None and _ts(f.updated_at) < _ts(entry.finding_updated_at):
                log.info("events: finding %s: UpdatedAt %s is older than the %s already handled; dropped", f.id,
                         f.updated_at, entry.finding_updated_at, extra={"finding_id": f.id})
            else:
                out.append(f)
        return out

    def _poison(self, message: dict[str, Any], exc: MalformedMessage) -> None:
        """Logged and made visible again at once: after maxReceiveCount SQS moves it to the dead-letter queue."""
        count = (message.get("Attributes") or {}).get("ApproximateReceiveCount", "?")
        log.error("events: malformed message %s (received %s time(s)): %s; not deleted, the queue's redrive policy "
                  "moves it to the dead-letter queue", message.get("MessageId"), count, exc)
        try:
            self.client.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                  VisibilityTimeout=0)
        except Exception as err:  # noqa: BLE001 - it comes back after the visibility timeout instead
            log.warning("events: could not release message %s: %s", message.get("MessageId"), type(err).__name__)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for i in range(0, len(messages), BATCH):
            chunk = messages[i:i + BATCH]
            answer = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)])
            for failed in answer.get("Failed") or []:  # it comes back and is handled again: harmless
                log.warning("events: message %s not deleted: %s", chunk[int(failed["Id"])].get("MessageId"),
                            failed.get("Message") or failed.get("Code"))


def sqs_client(queue_url: str, region: str | None, endpoint_url: str | None, session: Any = None) -> Any:
    """An SQS client in the queue's region (boto3's credential chain)."""
    import boto3
    from botocore.config import Config as BotoConfig

    session = session or boto3.session.Session()
    # read_timeout beyond the 20 s long poll, else a quiet queue looks like a timeout
    return session.client("sqs", region_name=region or queue_region(queue_url), endpoint_url=endpoint_url,
                          config=BotoConfig(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5,
                                            read_timeout=30))


def open_consumer(cfg: Any, syncer: Syncer, queue_url: str, stop: threading.Event,
                  session: Any = None) -> EventConsumer:
    """The consumer for `run` (cli.py): the queue from `events` (or --events), the scopes the poller reads."""
    from .app import account_roles, source_scopes

    ev = cfg.events
    client = sqs_client(queue_url, ev.region, ev.endpoint_url, session)
    return EventConsumer(syncer, client, queue_url, scopes=source_scopes(cfg),
                         aggregation=cfg.securityhub.aggregation, by_account=bool(account_roles(cfg)),
                         wait_seconds=ev.wait_seconds, stop=stop)
