"""Calls per finding of the new Security Hub source: `python -m bench.v2 -n 1000`.

Loads N generated V2 control findings (OCSF) into the stand-ins, then runs sh2jira in-process against them
(real boto3 and jira clients over HTTP; pacing and throttling off: this bench counts calls, not seconds):
1. `source: v2`, `link_back: full`, backfill: GetFindingsV2 pages per finding, BatchUpdateFindingsV2 calls per
   ticketed finding, Jira calls;
2. an idle cycle (nothing changed): GetFindingsV2 pages, all of them the check of open issues by id;
3. a tenth of the findings closed by their provider: calls per closure;
4. `source: both` with every finding also in CSPM: issues created (must be N, not 2N), calls per finding.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from sh2jira.app import build_syncer
from sh2jira.config import load_config
from sh2jira.sandbox import launch

CONFIG = """\
securityhub:
  regions: [us-east-1]
  endpoint_url: {sh_url}
  link_back: full
  source: {source}
  pacing: false
  first_run_lookback_days: 30
jira:
  url: {jira_url}
  flavour: cloud
  user: "{user}"
  token_env: SH2JIRA_BENCH_TOKEN
  timeout_seconds: 30
  search_lag_seconds: 0
ledger:
  path: {ledger}
rulebook:
  defaults: {{project: SEC, issue_type: Task}}
"""


def _finding(n: int, when: datetime, activity: str = "Create") -> dict[str, Any]:
    from tests.fixtures.ocsf import ocsf_finding  # the test fixture's shape (a real CSPM control sample)

    return ocsf_finding(n, modified=when, activity=activity)


def _asff(doc: dict[str, Any]) -> dict[str, Any]:
    """The CSPM (ASFF) copy of a V2 control finding: same Id, same product."""
    info = doc["finding_info"]
    return {"SchemaVersion": "2018-10-08", "Id": info["uid"],
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
            "AwsAccountId": doc["cloud"]["account"]["uid"], "GeneratorId": "security-control/S3.8",
            "Types": ["Software and Configuration Checks"], "CreatedAt": info["created_time_dt"],
            "UpdatedAt": info["modified_time_dt"], "Severity": {"Label": "HIGH"}, "Title": info["title"],
            "Description": info["desc"],
            "Resources": [{"Type": "AwsS3Bucket", "Id": doc["resources"][0]["uid"], "Region": "us-east-1"}],
            "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.8"}}


def _cycle(box: launch.Sandbox, tmp: Path, source: str, name: str) -> dict[str, Any]:
    path = tmp / f"{name}.yaml"
    path.write_text(CONFIG.format(sh_url=box.securityhub.url, jira_url=box.jira.url, user=box.jira_user(),
                                  source=source, ledger=tmp / f"ledger-{source if source != 'both' else 'b'}.db"))
    box.securityhub_app.calls.reset()
    box.jira_app.reset_calls()
    session = boto3.session.Session(aws_access_key_id=launch.ACCESS_KEY, aws_secret_access_key=launch.SECRET_KEY)
    syncer = build_syncer(load_config(path), session=session, environ={"SH2JIRA_BENCH_TOKEN": box.jira_token()})
    report = syncer.run_cycle()
    calls = box.securityhub_app.calls.as_dict()["total"]
    ops = ("GetFindingsV2", "BatchUpdateFindingsV2", "GetFindings", "BatchUpdateFindings")
    return {"created": report.created, "resolved": report.resolved, "read": report.read,
            **{op: calls.get(op, 0) for op in ops}, "jira": box.jira_app.total_calls(), "errors": report.errors[:3]}


def run(n: int) -> dict[str, Any]:
    box = launch.start("cloud")
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            now = datetime.now(UTC) - timedelta(hours=2)
            docs = [_finding(i, now + timedelta(seconds=i)) for i in range(n)]
            box.securityhub_app.v2.load(docs)
            out: dict[str, Any] = {"findings": n}
            out["backfill"] = _cycle(box, tmp, "v2", "backfill")
            out["idle"] = _cycle(box, tmp, "v2", "idle")
            closed = [_finding(i, now + timedelta(minutes=30, seconds=i), "Close") for i in range(0, n, 10)]
            box.securityhub_app.v2.load(closed)
            out["closures"] = {"closed": len(closed), **_cycle(box, tmp, "v2", "closures")}
            box.securityhub_app.reset()
            box.jira_app.reset()
            box.securityhub_app.v2.load(docs)
            box.securityhub_app.load([_asff(d) for d in docs])
            out["both"] = _cycle(box, tmp, "both", "both")
            out["both_idle"] = _cycle(box, tmp, "both", "both-idle")
            return out
    finally:
        box.stop()


def summary(r: dict[str, Any]) -> str:
    n = r["findings"]
    b, i, c, both = r["backfill"], r["idle"], r["closures"], r["both"]
    rows = [
        ("backfill, source v2: issues", f"{b['created']} of {n}"),
        ("GetFindingsV2 pages per finding", f"{b['GetFindingsV2'] / n:.4f} ({b['GetFindingsV2']} pages)"),
        ("BatchUpdateFindingsV2 calls per ticketed finding (full)",
         f"{b['BatchUpdateFindingsV2'] / max(1, b['created']):.4f} ({b['BatchUpdateFindingsV2']} calls)"),
        ("Jira calls per new finding", f"{b['jira'] / max(1, b['created']):.4f} ({b['jira']})"),
        ("idle cycle: GetFindingsV2 pages (open issues checked by id)",
         f"{i['GetFindingsV2']} ({i['GetFindingsV2'] / max(1, b['created']):.4f} per open issue); "
         f"BatchUpdateFindingsV2 {i['BatchUpdateFindingsV2']}; Jira {i['jira']}"),
        (f"closures ({c['closed']} closed by the provider): resolved",
         f"{c['resolved']}; GetFindingsV2 {c['GetFindingsV2']}, BatchUpdateFindingsV2 {c['BatchUpdateFindingsV2']}, "
         f"Jira {c['jira']} ({c['jira'] / max(1, c['resolved']):.2f} per closure)"),
        ("source both, every finding in CSPM and V2: issues", f"{both['created']} of {n} (0 duplicates expected)"),
        ("both: reads", f"GetFindings {both['GetFindings']}, GetFindingsV2 {both['GetFindingsV2']}; link-backs "
                        f"BatchUpdateFindings {both['BatchUpdateFindings']}, "
                        f"BatchUpdateFindingsV2 {both['BatchUpdateFindingsV2']}"),
        ("both, idle cycle", f"GetFindings {r['both_idle']['GetFindings']}, "
                             f"GetFindingsV2 {r['both_idle']['GetFindingsV2']}, Jira {r['both_idle']['jira']}"),
    ]
    return "\n".join(f"| {k} | {v} |" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.v2", description=textwrap.dedent(__doc__ or "").split("\n")[0])
    p.add_argument("--findings", "-n", type=int, default=1000)
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = p.parse_args(argv)
    result = run(args.findings)
    result["command"] = "python -m bench.v2 " + " ".join(sys.argv[1:] if argv is None else argv)
    print(summary(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
