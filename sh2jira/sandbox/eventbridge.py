"""The EventBridge rule of deploy/ (Security Hub finding events → an SQS queue), for the stand-ins: the events the
Security Hub stand-in records (`SecurityHubApp.events`) are sent to a queue with the real boto3 SQS client, as the
rule's SQS target does. `forward()` sends what is new; `start()` keeps forwarding in the background (every
`period` seconds) for event-mode benches and process tests."""

from __future__ import annotations

import json
import threading
from typing import Any

RULE_PATTERN = {"source": ["aws.securityhub"],
                "detail-type": ["Security Hub Findings - Imported", "Findings Imported V2"]}


class EventBridge:
    def __init__(self, securityhub_app: Any, sqs: Any, queue_url: str, *, period: float = 0.01) -> None:
        self.app = securityhub_app
        self.sqs = sqs
        self.queue_url = queue_url
        self.period = period
        self.sent = 0
        self._seen = len(securityhub_app.events)  # only events recorded from now on
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def forward(self) -> int:
        """Send the events recorded since the last call that match the rule; returns how many were sent."""
        with self._lock:
            recorded = list(self.app.events)
            if len(recorded) < self._seen:  # the stand-in was reset
                self._seen = 0
            events = recorded[self._seen:]
            self._seen += len(events)
            matching = [e for e in events if e.get("source") in RULE_PATTERN["source"]
                        and e.get("detail-type") in RULE_PATTERN["detail-type"]]
            for i in range(0, len(matching), 10):
                chunk = matching[i:i + 10]
                self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(n), "MessageBody": json.dumps(e)} for n, e in enumerate(chunk)])
            self.sent += len(matching)
            return len(matching)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sandbox-eventbridge", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.forward()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
