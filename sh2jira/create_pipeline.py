"""Bulk creates in flight across pages, and the cursors that must wait for them.

Why: a real site's bulk create of 50 takes about a second. When each page waited for its own creates before the
next page was planned, the cycle ran at one round trip per page however much of Jira's rate limit was left. Here a
page's creates are sent and the sync goes on planning the next page; at most `jira.max_concurrency` bulk creates
are in flight in all (a pool of that many threads; the Jira gate and limiter still pace every call).

What does not change: the intents are in the ledger before their POST (the sync writes them before `submit`);
the results are recorded on the sync's own thread, in the order the pages were sent (the threads here only talk
HTTP, never to the ledger); and a scope's cursor moves past a page only once that page's results, and those of
every earlier page of the scope, are recorded (`Cursors`). A finding read again while its create is in flight is
CREATING in the ledger, so the planner leaves it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .jira_sink import Created, JiraSink
from .plan import IssueDraft


@dataclass(eq=False)
class Sent:
    """One page's creates, sent: its chunks' futures in order, and what the sync needs to record them."""

    futures: list[Future[list[Created]]]
    context: Any = None  # the sync's own record of the page (plan, intents, scope)
    recorded: bool = False
    fatal: bool = False  # its results carried a failure that ends the cycle (Jira unreachable, token refused)

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def results(self) -> list[Created]:
        """The results in draft order (waits for the chunks still in flight)."""
        return [r for f in self.futures for r in f.result()]


class CreatePipeline:
    """A pool of `workers` threads sending bulk-create chunks; `submit` returns at once."""

    def __init__(self, sink: JiraSink, workers: int) -> None:
        self.sink = sink
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sh2jira-create")
        self._halted: list[BaseException] = []  # a systemic failure: chunks not yet sent are not sent
        self.pending: deque[Sent] = deque()  # sent, not yet recorded, in the order sent
        self.peak_chunks = 0  # most chunks sent and not yet recorded at once (a figure for tests and logs)

    def submit(self, drafts: Sequence[IssueDraft], context: Any = None) -> Sent:
        futures = [self._pool.submit(self.sink.create_chunk, start, chunk, self._halted)
                   for start, chunk in self.sink.chunks(drafts)]
        sent = Sent(futures, context)
        self.pending.append(sent)
        self.peak_chunks = max(self.peak_chunks, self.chunks_pending())
        return sent

    def chunks_pending(self) -> int:
        return sum(len(s.futures) for s in self.pending)

    def ready(self, *, block: bool) -> list[Sent]:
        """The oldest pages whose chunks are all back, in the order sent (stops at the first still in flight);
        with `block`, waits for the oldest first. The caller records them, then calls `recorded`."""
        if block and self.pending:
            wait(self.pending[0].futures)
        out = []
        for sent in self.pending:
            if not sent.done():
                break
            out.append(sent)
        return out

    def recorded(self, sent: Sent) -> None:
        sent.recorded = True
        self.pending.remove(sent)

    def close(self) -> None:
        """Waits for every chunk in flight (they are the caller's to record first) and stops the threads."""
        self._pool.shutdown(wait=True)


@dataclass
class _Page:
    sent: list[Sent]
    newest: datetime | None


@dataclass
class Cursors:
    """Per scope, the pages read whose creates are not all recorded yet, in page order: a scope's cursor moves
    to the newest page whose results and those of every page before it are in the ledger, never past one that
    met a systemic failure."""

    pages: dict[str, deque[_Page]] = field(default_factory=dict)

    def page(self, scope: str, sent: list[Sent], newest: datetime | None) -> datetime | None:
        """A page of `scope` was planned (`sent`: its creates in flight). Returns the cursor to store now, if
        any (None: it waits behind a page in flight)."""
        queue = self.pages.setdefault(scope, deque())
        queue.append(_Page([s for s in sent if not s.recorded], newest))
        return self.settle(scope)

    def settle(self, scope: str) -> datetime | None:
        """The newest UpdatedAt of the pages of `scope` that may now count as done (None: none)."""
        queue = self.pages.get(scope)
        newest = None
        while queue and all(s.recorded and not s.fatal for s in queue[0].sent):
            newest = queue.popleft().newest or newest
        return newest

    def scopes(self) -> list[str]:
        return list(self.pages)
