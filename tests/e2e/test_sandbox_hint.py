"""`sh2jira sandbox` on free ports prints a command that works exactly as printed (its own config, its ports)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    proc = subprocess.Popen([sys.executable, "-m", "sh2jira", "sandbox"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # until the banner is complete
            lines.append(line.rstrip("\n"))
            if "Ctrl-C stops" in line:
                break
        yield proc, lines
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_printed_command_runs_a_cycle_as_printed(sandbox_process: tuple[subprocess.Popen[str], list[str]],
                                                     tmp_path: Path) -> None:
    proc, lines = sandbox_process
    commands = [line.strip() for line in lines if "sh2jira run --once" in line]
    assert len(commands) == 1, lines
    command = commands[0]
    config = Path(re.search(r"-c (\S+)$", command).group(1))  # type: ignore[union-attr]
    assert config.exists()
    ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", "\n".join(lines))}
    assert len(ports) == 2  # free ports, whatever they are
    assert all(f":{p}" in config.read_text() for p in ports)  # the config points at the ports really bound

    # A shell with none of our variables: the printed line must need nothing else.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SH2JIRA_"))}
    clean["AWS_PROFILE"] = "a-profile-this-machine-does-not-have"  # the line unsets it
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120, env=clean,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    created = int(re.search(r"created=(\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    assert created > 0, done.stdout

    again = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120, env=clean,
                           cwd=tmp_path)
    assert again.returncode == 0 and "created=0" in again.stdout, again.stdout  # its ledger remembers
    assert proc.poll() is None  # the sandbox is still serving


def test_a_bad_findings_path_stops_the_sandbox_before_it_starts(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "sh2jira", "sandbox", "--findings", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no such file or folder" in done.stderr and "Traceback" not in done.stderr
