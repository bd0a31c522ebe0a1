"""End to end: while the link-backs of a backfill drain after the last page, the progress line keeps moving and
shows what is pending, its rate and an ETA. The drain is slow for real here: BatchUpdateFindings is paced at
Security Hub's quota (one call per finding with link_back: full), as against AWS."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from sh2jira.cli import _watch_linkbacks
from sh2jira.progress import Progress
from tests.e2e.world import NOW, World, finding, fresh, sandbox, world  # noqa: F401


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_moves_during_the_link_back_drain_with_pending_rate_and_eta(world: World) -> None:
    world.import_findings([fresh(finding(i), NOW - timedelta(hours=1)) for i in range(45)])
    screen = Terminal()
    progress = Progress(screen, width=300, min_interval=0, tick_seconds=0.05)
    syncer = world.syncer(progress=progress)
    _watch_linkbacks(progress, syncer)
    report = syncer.run_cycle()
    progress.finish(report, "us-east-1")
    assert report.created == 45 and report.linkbacks == 45

    draws = [d for d in screen.getvalue().replace("\n", "\r").split("\r") if d.strip()]
    pages = [d for d in draws if "read 45" in d]
    draining = [d for d in pages if (m := re.search(r"([\d,]+) pending \(([\d.]+)/s, ETA \d+:\d\d\)", d))
                and int(m.group(1).replace(",", "")) > 0 and float(m.group(2)) > 0]
    assert len(draining) >= 3, draws[-10:]  # redrawn again and again after the last page, with a rate and ETA
    pending = [int(re.search(r"([\d,]+) pending", d).group(1).replace(",", "")) for d in draining]  # type: ignore[union-attr]
    assert pending[-1] < pending[0]  # and it goes down
    assert "link-backs 0 pending" in draws[-1]
