"""Event mode latency on the sandbox: from BatchImportFindings to the finding's Jira issue.

    python -m bench.events [--findings 300] [--rate 5] [--jira-latency 0.02]

The stand-ins run here; SQS (with a dead-letter queue) is a moto server; the sandbox's EventBridge rule
(sandbox/eventbridge.py) sends each "Security Hub Findings - Imported" event the Security Hub stand-in records to
the queue, checking every 10 ms. `sh2jira run --events QUEUE_URL` runs as a real process (polling every 900 s, so
every issue here comes from an event). Findings are imported one at a time at `--rate` per second; a watcher
notes when each one's issue (its `sh2jira-<digest>` label) appears in the Jira stand-in. Printed as one JSON line:
p50 / p90 / p99 / max in seconds. In AWS, EventBridge adds its own delivery time (typically about half a second)
on top of these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from sh2jira.finding import FindingKey
from sh2jira.sandbox import launch
from sh2jira.sandbox.eventbridge import EventBridge

REPO = Path(__file__).resolve().parents[1]


def doc(n: int, run: str) -> dict[str, Any]:
    """A ticketable control finding (HIGH, FAILED), new now."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "SchemaVersion": "2018-10-08", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
        "ProductName": "Security Hub", "CompanyName": "AWS", "AwsAccountId": launch.ADMIN_ACCOUNT,
        "Region": "us-east-1", "GeneratorId": "security-control/S3.8", "Types": ["Software and Configuration Checks"],
        "Id": f"arn:aws:securityhub:us-east-1:{launch.ADMIN_ACCOUNT}:security-control/S3.8/finding/{run}-{n:05d}",
        "CreatedAt": now, "UpdatedAt": now, "Severity": {"Label": "HIGH", "Normalized": 70},
        "Title": "S3 general purpose buckets should block public access", "Description": "The bucket is public.",
        "Resources": [{"Type": "AwsS3Bucket", "Id": f"arn:aws:s3:::bench-{run}-{n}", "Region": "us-east-1"}],
        "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.8"}, "RecordState": "ACTIVE",
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__.split("\n\n")[0])
    p.add_argument("--findings", type=int, default=300)
    p.add_argument("--rate", type=float, default=5.0, help="findings imported per second")
    p.add_argument("--jira-latency", type=float, default=0.02, help="Jira stand-in latency per request, seconds")
    args = p.parse_args(argv)
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.update({"AWS_ACCESS_KEY_ID": launch.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": launch.SECRET_KEY})
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    box = launch.start("cloud")
    box.jira_app.set_latency(args.jira_latency)
    work = Path(tempfile.mkdtemp(prefix="sh2jira-events-"))
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint)
    dlq = sqs.create_queue(QueueName="sh2jira-findings-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="sh2jira-findings", Attributes={"VisibilityTimeout": "300", "RedrivePolicy": (
        json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}))})["QueueUrl"]
    config = launch.write_config(box, work)
    config.write_text(config.read_text() + f"events:\n  endpoint_url: {endpoint}\n")
    bridge = EventBridge(box.securityhub_app, sqs, url, period=0.01)
    bridge.start()
    env = {**os.environ, "SH2JIRA_JIRA_TOKEN": box.jira_token(), "AWS_DEFAULT_REGION": "us-east-1"}
    log = work / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sh2jira", "--log-level", "INFO", "run", "--events", url,
                                 "-c", str(config)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    client = boto3.client("securityhub", region_name="us-east-1", endpoint_url=box.securityhub.url)
    imported: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            now = time.monotonic()
            for issue in box.jira_app.issues():
                for label in issue["labels"]:
                    if label in imported and label not in seen:
                        seen[label] = now
            time.sleep(0.005)

    try:
        deadline = time.monotonic() + 60
        while "cycle done" not in log.read_text(errors="replace"):  # the first polling cycle ran
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"sh2jira did not start: see {log}")
            time.sleep(0.1)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        run = str(os.getpid())
        started = time.monotonic()
        for n in range(args.findings):
            time.sleep(max(0.0, started + n / args.rate - time.monotonic()))
            finding = doc(n, run)
            label = FindingKey(finding["ProductArn"], finding["Id"]).label
            imported[label] = time.monotonic()
            assert client.batch_import_findings(Findings=[finding])["SuccessCount"] == 1
        deadline = time.monotonic() + 60
        while len(seen) < len(imported) and time.monotonic() < deadline:
            time.sleep(0.05)
        done.set()
        watcher.join()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        done.set()
        bridge.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        box.stop()
        moto.stop()
    latencies = [seen[k] - imported[k] for k in seen]
    duplicates = len(box.jira_app.issues()) - len(seen)
    print(json.dumps({
        "findings": args.findings, "rate_per_s": args.rate, "jira_latency_s": args.jira_latency,
        "issues": len(seen), "missing": len(imported) - len(seen), "extra_issues": duplicates,
        "latency_s": {"p50": round(statistics.median(latencies), 3), "p90": round(percentile(latencies, 90), 3),
                      "p99": round(percentile(latencies, 99), 3), "max": round(max(latencies), 3)} if latencies else {},
        "exit_code": code}))
    return 0 if latencies and len(seen) == len(imported) and code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
