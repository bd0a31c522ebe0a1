"""The progress line: one line redrawn in place on a TTY, nothing at all elsewhere (plain logs stay)."""

from __future__ import annotations

import io
import logging
import threading

from sh2jira.progress import Progress, is_terminal, render, render_linkbacks
from sh2jira.sync import CycleReport


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty
        self.flushes = 0

    def isatty(self) -> bool:
        return self.tty

    def flush(self) -> None:
        self.flushes += 1


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def report(read: int, created: int = 0, **kw: int) -> CycleReport:
    r = CycleReport(read=read, created=created)
    for name, value in kw.items():
        setattr(r, name, value)
    return r


def screen(raw: str) -> list[str]:
    """What a terminal shows: each \\r returns to column 0 and overwrites, each \\n starts a new row."""
    rows: list[str] = []
    for text_row in raw.split("\n"):
        row: list[str] = []
        for segment in text_row.split("\r"):
            row[: len(segment)] = list(segment)
        rows.append("".join(row).rstrip())
    return rows


def test_on_a_terminal_one_line_is_redrawn_in_place() -> None:
    stream, clock = FakeStream(tty=True), Clock()
    progress = Progress(stream, tick_seconds=0, clock=clock, width=200)
    assert progress.enabled
    for page in range(1, 4):
        clock.t += 1.0
        progress(report(read=100 * page, created=10 * page, skipped=page, planned=90 * page), "111111111111/us-east-1")
    raw = stream.getvalue()
    assert "\n" not in raw and raw.count("\r") == 3  # three draws, all on the same row
    assert screen(raw) == ["111111111111/us-east-1  read 300 (100/s)  planned 270 (90/s)  created 30 (10/s)  "
                           "updated 0  unchanged 0  skipped 3  0:03"]
    progress.finish()
    assert stream.getvalue().endswith("\n") and stream.flushes >= 4


def test_a_shorter_line_leaves_no_tail_of_the_longer_one() -> None:
    stream, clock = FakeStream(tty=True), Clock()
    progress = Progress(stream, tick_seconds=0, clock=clock, width=200, min_interval=0)
    progress(report(read=123_456, created=99_999, invalid=5, errors=["x", "y"]), "eu-west-1")
    progress(report(read=1), "a")
    assert screen(stream.getvalue()) == ["a  read 1 (0/s)  planned 0 (0/s)  created 0 (0/s)  updated 0  unchanged 0  "
                                         "skipped 0  0:00"]


def test_not_a_terminal_writes_nothing() -> None:
    stream, clock = FakeStream(tty=False), Clock()
    progress = Progress(stream, tick_seconds=0, clock=clock)
    assert not progress.enabled
    handler = logging.StreamHandler(stream)
    progress.attach(handler)
    assert handler.filters == []
    for page in range(5):
        clock.t += 1
        progress(report(read=page * 100), "us-east-1")
    progress.clear()
    progress.finish(report(read=500))
    assert stream.getvalue() == "" and stream.flushes == 0


def test_redraws_are_rate_limited_but_the_final_counts_are_always_shown() -> None:
    stream, clock = FakeStream(tty=True), Clock()
    progress = Progress(stream, tick_seconds=0, clock=clock, width=200, min_interval=0.5)
    for page in range(1, 11):  # ten pages within 0.9 s: drawn at 0.1 and 0.6 only
        clock.t += 0.1
        progress(report(read=100 * page))
    assert stream.getvalue().count("\r") == 2
    progress.finish(report(read=1000, created=7))
    rows = screen(stream.getvalue())
    assert rows[0].startswith("read 1,000 (1,000/s)  planned 0 (0/s)  created 7 (7/s)") and rows[1:] == [""]


def test_the_line_is_cut_to_the_terminal_width_so_it_never_wraps() -> None:
    stream = FakeStream(tty=True)
    Progress(stream, width=30, tick_seconds=0)(report(read=10**9, created=10**8), "123456789012/ap-southeast-2")
    assert max(len(row) for row in screen(stream.getvalue())) <= 29


def test_a_log_record_blanks_the_line_and_the_next_page_redraws_it_below() -> None:
    stream, clock = FakeStream(tty=True), Clock()
    progress = Progress(stream, tick_seconds=0, clock=clock, width=200, min_interval=0)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    progress.attach(handler)
    log = logging.getLogger("sh2jira.test_progress")
    log.addHandler(handler)
    log.propagate = False
    try:
        progress(report(read=100), "us-east-1")
        log.warning("link-back failed for 1 finding(s)")
        progress(report(read=200), "us-east-1")
    finally:
        log.removeHandler(handler)
    rows = screen(stream.getvalue())
    assert rows[0] == "WARNING link-back failed for 1 finding(s)"  # no progress text left in the log line
    assert rows[1].startswith("us-east-1  read 200")


def test_render_shows_invalid_and_errors_only_when_there_are_some_and_hours_when_long() -> None:
    assert "invalid" not in render(report(read=5), "", 10) and "errors" not in render(report(read=5), "", 10)
    line = render(report(read=7200, invalid=2, errors=["a"]), "", 3725)
    assert line.endswith("invalid 2  errors 1  1:02:05") and "(2/s)" in line


def test_streams_without_isatty_or_closed_are_not_terminals() -> None:
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)
    assert not is_terminal(object())  # type: ignore[arg-type]


# --- link-backs draining after the last page ---------------------------------------------------------------

class Pending:
    """What the CLI wires in: the ledger's count of pending link-backs."""

    def __init__(self, pending: int) -> None:
        self.pending = pending

    def __call__(self) -> int:
        return self.pending


def test_the_line_keeps_moving_while_link_backs_drain_with_rate_and_eta() -> None:
    stream, clock = FakeStream(tty=True), Clock()
    progress = Progress(stream, tick_seconds=0, clock=clock, width=200, min_interval=0)
    pending = Pending(3000)
    progress.watch_linkbacks(pending)
    live = report(read=3000, created=3000)
    progress(live, "us-east-1")  # the last page: from here on only the ticker draws
    assert "link-backs 3,000 pending (0/s)" not in screen(stream.getvalue())[-1]  # no rate yet: none shown
    assert "link-backs 3,000 pending  0:00" in screen(stream.getvalue())[-1]
    for _ in range(10):  # ten ticks, one a second, 10 link-backs a second
        clock.t += 1.0
        pending.pending -= 10
        progress.tick()
    last = screen(stream.getvalue())[-1]
    assert "link-backs 2,900 pending (10.0/s, ETA 4:50)" in last, last
    assert last.endswith("0:10")  # the clock moves too
    pending.pending = 0
    progress.finish(live, "us-east-1")
    assert "link-backs 0 pending" in screen(stream.getvalue())[0]


def test_growth_while_pages_add_link_backs_is_not_drain_and_a_stall_shows_zero_rate() -> None:
    stream, clock = FakeStream(tty=True), Clock()
    progress = Progress(stream, tick_seconds=0, clock=clock, width=200, min_interval=0)
    pending = Pending(40)
    progress.watch_linkbacks(pending)
    progress(report(read=45), "")
    clock.t += 1.0
    pending.pending = 90  # a page queued 50 more
    progress.tick()
    assert "link-backs 90 pending (0/s)" in screen(stream.getvalue())[-1]


def test_no_link_backs_no_link_back_text() -> None:
    stream, clock = FakeStream(tty=True), Clock()
    progress = Progress(stream, tick_seconds=0, clock=clock, width=200, min_interval=0)
    progress.watch_linkbacks(Pending(0))
    progress(report(read=5), "")
    assert "link-backs" not in stream.getvalue()


def test_render_linkbacks_formats_rate_and_eta() -> None:
    assert render_linkbacks(1800, 9.5) == "link-backs 1,800 pending (9.5/s, ETA 3:09)"
    assert render_linkbacks(0, 9.5) == "link-backs 0 pending"
    assert render_linkbacks(7, None) == "link-backs 7 pending"
    assert render_linkbacks(36_000, 1.0).endswith("ETA 10:00:00)")


def test_the_ticker_thread_redraws_until_finish_and_a_failing_count_never_breaks_the_run() -> None:
    stream = FakeStream(tty=True)
    progress = Progress(stream, width=200, min_interval=0, tick_seconds=0.01)
    drawn = threading.Event()

    def pending() -> int:
        if drawn.is_set():
            raise RuntimeError("ledger closed")
        drawn.set()
        return 2

    progress.watch_linkbacks(pending)
    progress(report(read=1))
    assert drawn.wait(5)
    progress.finish(report(read=1))
    assert progress._ticker is None
    assert "pending" in stream.getvalue()


def test_each_stage_has_its_rate_and_the_link_backs_an_eta_on_one_line() -> None:
    """read → planned → created → link-backs pending: a rate each, an ETA where a total is known (the link-backs:
    pending ÷ the rate they drain at); a report without a `planned` counter still renders."""
    line = render(report(read=1000, planned=900, created=450), "us-east-1", 10,
                  render_linkbacks(300, 10.0))
    assert line == ("us-east-1  read 1,000 (100/s)  planned 900 (90/s)  created 450 (45/s)  updated 0  unchanged 0  "
                    "skipped 0  link-backs 300 pending (10.0/s, ETA 0:30)  0:10")
    assert "\n" not in line

    class Bare:
        read, created, updated, unchanged, skipped, invalid, errors = 5, 1, 0, 0, 0, 0, ()

    assert render(Bare(), "", 1).startswith("read 5 (5/s)  created 1 (1/s)")  # type: ignore[arg-type]
