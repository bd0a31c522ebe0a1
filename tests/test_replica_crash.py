"""Two long-running replicas on one DynamoDB ledger (moto server, over HTTP), the lease holder SIGKILLed at seeded
random points: the CI variant of `python -m bench.replica_crash` (20 kills there). The standby takes over, and the
end state has one issue per ticketable finding, every link-back written, and a settled ledger."""

from __future__ import annotations

from pathlib import Path

from bench.crashcheck import verify
from bench.replica_crash import ReplicaHarness
from tests.fixtures.ledgers import MotoServer, moto_server  # noqa: F401


def test_kills_of_the_lease_holder_leave_no_duplicate_and_no_missing_issue_or_link_back(
        moto_server: MotoServer, tmp_path: Path) -> None:
    h = ReplicaHarness(tmp_path, moto_server.url, lease_seconds=10)
    try:
        h.load(80, seed=5)
        landed = h.kill_rounds(4, seed=5)
        final = h.settle()
        codes = h.stop_all()
        verdict = verify(h)
    finally:
        h.stop_all()
        h.stop()
    assert len(landed) == 4 and {r.victim for r in landed} <= {"replica-a", "replica-b"}
    assert all(0 < r.takeover < 10 for r in landed)  # one host: the dead holder's lease is taken at the next ask
    assert final.get("created") == 0 and codes == [0, 0]  # SIGTERM: both stop cleanly
    assert verdict.ok, verdict.examples
    assert verdict.issues == verdict.ticketable > 60
