"""Two replica processes on one DynamoDB ledger (moto server, over HTTP): the lease holder is killed with
SIGKILL and the standby holds the lease within the TTL (at once on the same host). bench/replicas.py measures it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures.ledgers import MotoServer, moto_server  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


def run_bench(server: MotoServer, *extra: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "bench.replicas", "--endpoint", server.url, "--runs", "1",
                          "--ttl", "2", *extra], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_standby_on_another_host_takes_over_within_the_ttl_after_kill_9(moto_server: MotoServer) -> None:
    took = run_bench(moto_server)["takeover_s"]
    assert isinstance(took, dict) and 0 < took["max"] <= 2 + 0.5  # the TTL, plus one poll and slack


def test_a_standby_on_the_same_host_takes_over_at_once(moto_server: MotoServer) -> None:
    took = run_bench(moto_server, "--same-host")["takeover_s"]
    assert isinstance(took, dict) and took["max"] < 1.0
