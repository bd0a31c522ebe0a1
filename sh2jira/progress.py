"""A progress line for long interactive runs (a backfill started from a terminal).

On a TTY it redraws one line in place after each page (a carriage return, then the line padded over the
previous one, so no terminal escape codes are needed). On anything else (a pipe, a file, cron, a container
log) it writes nothing at all: the plain log lines are the record there. It is fed by the Syncer's
CycleReport counters through a hook called after each page.
"""

from __future__ import annotations

import logging
import os
import threading
import time
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


def render(report: Counters, scope: str, elapsed: float) -> str:
    """`us-east-1  read 12,345 (410/s)  created 300  updated 12  unchanged 9,000  skipped 33  0:30`."""
    rate = report.read / elapsed if elapsed > 0 else 0.0
    parts = [f"read {report.read:,} ({rate:,.0f}/s)", f"created {report.created:,}",
             f"updated {report.updated:,}", f"unchanged {report.unchanged:,}", f"skipped {report.skipped:,}"]
    if report.invalid:
        parts.append(f"invalid {report.invalid:,}")
    if report.errors:
        parts.append(f"errors {len(report.errors):,}")
    minutes, seconds = divmod(int(elapsed), 60)
    hours, minutes = divmod(minutes, 60)
    parts.append(f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}")
    return "  ".join(([scope] if scope else []) + parts)


class Progress:
    """The Syncer's per-page hook: `progress(report, scope)`. Redraws at most every `min_interval` seconds."""

    def __init__(self, stream: TextIO, *, enabled: bool | None = None, min_interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic, width: int | None = None) -> None:
        self.stream = stream
        self.enabled = is_terminal(stream) if enabled is None else enabled
        self.min_interval = min_interval
        self.clock = clock
        self.width = width
        self._started = clock()
        self._last_draw: float | None = None
        self._shown = 0  # length of the line now on screen; 0 when none
        self._lock = threading.Lock()

    def __call__(self, report: Counters, scope: str = "") -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self._last_draw is not None and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        self._draw(render(report, scope, now - self._started))

    def finish(self, report: Counters | None = None, scope: str = "") -> None:
        """Draw the final counts (whatever the interval) and end the line, so what follows starts clean."""
        if not self.enabled:
            return
        if report is not None:
            self._draw(render(report, scope, self.clock() - self._started))
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
