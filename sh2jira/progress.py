"""A progress line for long interactive runs (a backfill started from a terminal).

On a TTY it redraws one line in place after each page (a carriage return, then the line padded over the
previous one, so no terminal escape codes are needed). On anything else (a pipe, a file, cron, a container
log) it writes nothing at all: the plain log lines are the record there. It is fed by the Syncer's
CycleReport counters through a hook called after each page.

Pages are not the only work: after the last page the cycle waits for the link-backs still queued (one
BatchUpdateFindings per finding at 10/s: a 3,000-finding backfill drains for minutes). So once the first page
is drawn, a ticker also redraws the line every second until `finish`, with the link-backs pending, the rate
they drain at and an ETA, so the line never looks frozen while work goes on. The rate is taken from the pending
count going down (written link-backs are only counted per batch of up to 500, too coarse to show).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol, TextIO


class Counters(Protocol):
    """What the line shows: the Syncer's CycleReport has these."""

    read: int
    created: int
    updated: int
    unchanged: int
    skipped: int
    invalid: int

    @property
    def errors(self) -> Sequence[str]: ...


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed or detached stream
        return False


def terminal_width(stream: TextIO, default: int = 80) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or default
    except (AttributeError, ValueError, OSError):
        return default


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_linkbacks(pending: int, rate: float | None) -> str:
    """`link-backs 1,800 pending (9.8/s, ETA 3:04)`; the rate and ETA once a rate is known."""
    text = f"link-backs {pending:,} pending"
    if pending and rate:
        text += f" ({rate:,.1f}/s, ETA {_clock_text(pending / rate)})"
    elif pending and rate is not None:
        text += " (0/s)"
    return text


def _stage(name: str, count: int, elapsed: float) -> str:
    """`read 12,345 (410/s)`: a stage with its mean rate since the start (no ETA: GetFindings gives no total)."""
    rate = count / elapsed if elapsed > 0 else 0.0
    return f"{name} {count:,} ({rate:,.0f}/s)"


def render(report: Counters, scope: str, elapsed: float, linkbacks: str = "") -> str:
    """`us-east-1  read 12,345 (410/s)  planned 12,300 (405/s)  created 300 (10/s)  updated 12  unchanged 9,000
    skipped 33  link-backs 1,800 pending (9.8/s, ETA 3:04)  0:30`: each stage of the pipeline (read → planned →
    created → link-backs) with its rate, so a stage that holds the others up shows; an ETA only where a total is
    known (the link-backs pending, at the rate they drain)."""
    parts = [_stage("read", report.read, elapsed)]
    planned = getattr(report, "planned", None)
    if planned is not None:
        parts.append(_stage("planned", planned, elapsed))
    parts += [_stage("created", report.created, elapsed), f"updated {report.updated:,}",
              f"unchanged {report.unchanged:,}", f"skipped {report.skipped:,}"]
    if report.invalid:
        parts.append(f"invalid {report.invalid:,}")
    if report.errors:
        parts.append(f"errors {len(report.errors):,}")
    if linkbacks:
        parts.append(linkbacks)
    parts.append(_clock_text(elapsed))
    return "  ".join(([scope] if scope else []) + parts)


class _DrainRate:
    """How fast a queue drains: items per second over the last `window` seconds, from its length going down
    (growth, while pages still add link-backs, is not drain)."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()
        self.drained = 0
        self.last: int | None = None

    def add(self, now: float, pending: int) -> float | None:
        if self.last is not None and pending < self.last:
            self.drained += self.last - pending
        self.last = pending
        count = self.drained
        self.samples.append((now, count))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        (t0, c0) = self.samples[0]
        return (count - c0) / (now - t0) if now > t0 else None


class Progress:
    """The Syncer's per-page hook: `progress(report, scope)`. Redraws at most every `min_interval` seconds."""

    def __init__(self, stream: TextIO, *, enabled: bool | None = None, min_interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic, width: int | None = None,
                 tick_seconds: float = 1.0) -> None:
        self.stream = stream
        self.enabled = is_terminal(stream) if enabled is None else enabled
        self.min_interval = min_interval
        self.clock = clock
        self.width = width
        self._started = clock()
        self._last_draw: float | None = None
        self._shown = 0  # length of the line now on screen; 0 when none
        self._lock = threading.Lock()
        self.tick_seconds = tick_seconds
        self._linkbacks: Callable[[], int] | None = None
        self._rate = _DrainRate()
        self._linkbacks_seen = False
        self._last: tuple[Counters, str] | None = None  # the live report and scope, redrawn by the ticker
        self._ticker: threading.Thread | None = None
        self._stop_ticker = threading.Event()

    def watch_linkbacks(self, pending: Callable[[], int]) -> None:
        """Show the link-backs pending on the line, with the rate they drain at and an ETA."""
        self._linkbacks = pending

    def __call__(self, report: Counters, scope: str = "") -> None:
        if not self.enabled:
            return
        self._last = (report, scope)
        now = self.clock()
        if self._last_draw is not None and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        self._draw(self._line(report, scope, now))
        self._start_ticker()

    def tick(self) -> None:
        """Redraw the last report with the clock and link-backs brought up to date (the ticker calls this)."""
        if not self.enabled or self._last is None:
            return
        report, scope = self._last
        now = self.clock()
        self._last_draw = now
        self._draw(self._line(report, scope, now))

    def _line(self, report: Counters, scope: str, now: float) -> str:
        linkbacks = ""
        if self._linkbacks is not None:
            try:
                pending = self._linkbacks()
            except Exception:  # noqa: BLE001 - a progress line must never break the run it shows
                pending = 0
            rate = self._rate.add(now, pending)
            if pending or self._linkbacks_seen:
                self._linkbacks_seen = True
                linkbacks = render_linkbacks(pending, rate)
        return render(report, scope, now - self._started, linkbacks)

    def _start_ticker(self) -> None:
        if self.tick_seconds <= 0 or self._ticker is not None:
            return
        self._stop_ticker.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="sh2jira-progress", daemon=True)
        self._ticker.start()

    def _tick_loop(self) -> None:
        while not self._stop_ticker.wait(self.tick_seconds):
            self.tick()

    def _halt_ticker(self) -> None:
        if self._ticker is not None:
            self._stop_ticker.set()
            if self._ticker is not threading.current_thread():
                self._ticker.join()
            self._ticker = None

    def finish(self, report: Counters | None = None, scope: str = "") -> None:
        """Draw the final counts (whatever the interval) and end the line, so what follows starts clean."""
        if not self.enabled:
            return
        self._halt_ticker()
        self._last = None
        if report is not None:
            self._draw(self._line(report, scope, self.clock()))
        self._rate = _DrainRate()  # the next cycle starts its own count
        self._linkbacks_seen = False
        with self._lock:
            if self._shown:
                self.stream.write("\n")
                self.stream.flush()
                self._shown = 0

    def clear(self) -> None:
        """Blank the line, e.g. before a log record is written to the same terminal."""
        with self._lock:
            if self._shown:
                self.stream.write("\r" + " " * self._shown + "\r")
                self.stream.flush()
                self._shown = 0

    def attach(self, handler: logging.Handler) -> None:
        """Blank the line before each record this handler emits; the next page redraws it below the record."""
        if self.enabled:
            handler.addFilter(self._clear_for_record)

    def _clear_for_record(self, record: logging.LogRecord) -> bool:
        self.clear()
        return True

    def _draw(self, line: str) -> None:
        width = self.width or terminal_width(self.stream)
        line = line[: max(width - 1, 1)]  # never wrap: a wrapped line cannot be redrawn with \r
        with self._lock:
            self.stream.write("\r" + line.ljust(self._shown))
            self.stream.flush()
            self._shown = len(line)
