"""`sh2jira demo`: the sandbox, sample findings, one real cycle, and what it wrote on both sides.

Nothing is mocked: the cycle uses the real boto3 and jira clients over HTTP against the stand-ins, exactly as
`sh2jira run --once` would against AWS and Jira.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import boto3

from . import logs
from .app import SetupError, build_syncer
from .config import Config, ConfigError, load_config
from .sandbox import launch


def _config(config_path: str | None, stack: ExitStack) -> Config:
    if config_path:
        return load_config(config_path)
    path = stack.enter_context(resources.as_file(resources.files("sh2jira.samples").joinpath("demo.yaml")))
    return load_config(path)


def point_at_sandbox(cfg: Config, sandbox: launch.Sandbox, ledger_dir: str) -> Config:
    """The same config, with its Jira, Security Hub endpoint and ledger replaced by the sandbox's."""
    jira = cfg.jira.model_copy(update={"url": sandbox.jira.url, "user": sandbox.jira_user(),
                                       "flavour": sandbox.jira_app.flavour, "verify_tls": True})
    hub = cfg.securityhub.model_copy(update={"endpoint_url": sandbox.securityhub.url})
    ledger = cfg.ledger.model_copy(update={"path": Path(ledger_dir) / "demo.sqlite3"})
    return cfg.model_copy(update={"jira": jira, "securityhub": hub, "ledger": ledger})


def run_demo(findings: str | None = None, config_path: str | None = None, flavour: str = "cloud",
             out: TextIO | None = None, source: str | None = None) -> int:
    """`findings` is a JSON file or a folder of them. Exit 2 for a bad config or a findings path that is missing or
    yields no finding (a demo of nothing would look like a silent success), 1 when the cycle cannot start."""
    out = out or __import__("sys").stdout
    with ExitStack() as stack:
        try:
            cfg = _config(config_path, stack)
            if source:  # --source: which Security Hub the demo reads (the shipped OCSF samples come along)
                cfg = cfg.model_copy(update={"securityhub": cfg.securityhub.model_copy(update={"source": source})})
            if findings:
                launch.findings_files(findings)
        except ConfigError as exc:
            from .cli import report_config_error

            report_config_error(exc)
            return 2
        except launch.FindingsPathError as exc:
            logs.emit("error", f"--findings {exc}")
            return 2
        sandbox = launch.start(flavour)
        stack.callback(sandbox.stop)
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sh2jira-demo-"))
        print(f"Sandbox: Security Hub at {sandbox.securityhub.url}, Jira ({flavour}) at {sandbox.jira.url}", file=out)
        loaded = launch.load(sandbox, findings, out, v2_samples=cfg.securityhub.source != "cspm")
        print(f"Loaded {loaded} finding(s) from {findings or 'the shipped samples'}.", file=out)
        if loaded == 0:
            logs.emit("error", f"--findings {findings}: no finding could be loaded (see the lines above)")
            return 2
        cfg = point_at_sandbox(cfg, sandbox, tmp)
        session = boto3.session.Session(aws_access_key_id=launch.ACCESS_KEY,
                                        aws_secret_access_key=launch.SECRET_KEY)
        try:
            syncer = build_syncer(cfg, session=session, environ={cfg.jira.token_env: sandbox.jira_token()})
        except SetupError as exc:
            logs.emit("error", f"cannot start: {exc}")
            return 1
        report = syncer.run_cycle()
        print(f"\nCycle: {report.summary()}", file=out)
        for error in report.errors:
            print(f"  reported: {error}", file=out)
        print_issues(sandbox.jira_app.issues(), out)
        print_linkbacks(sandbox.securityhub_app.findings(), out)
        if cfg.securityhub.source != "cspm":
            print_v2_linkbacks(sandbox.securityhub_app.v2.findings(), out)
    return 0


def print_issues(issues: list[dict[str, Any]], out: TextIO) -> None:
    print(f"\nJira issues ({len(issues)}):", file=out)
    for issue in issues:
        labels = ",".join(lb for lb in issue.get("labels", []) if not lb.startswith("sh2jira-"))
        print(f"  {issue['key']:<7} {issue.get('priority', ''):<8} {issue.get('issuetype', ''):<5} "
              f"{issue.get('status', ''):<6} [{labels}] {issue.get('summary', '')}", file=out)
    if issues:
        first = issues[0]
        print(f"\n{first['key']} description, as Jira wiki markup (finding text escaped):", file=out)
        for line in str(first.get("description", "")).splitlines():
            print(f"  | {line}", file=out)


def print_linkbacks(findings: list[dict[str, Any]], out: TextIO) -> None:
    linked = [f for f in findings if (f.get("UserDefinedFields") or {}).get("sh2jira_issue")]
    print(f"\nLink-backs on findings ({len(linked)} of {len(findings)}):", file=out)
    for f in linked:
        udf = f["UserDefinedFields"]
        print(f"  {udf['sh2jira_issue']:<8} {f.get('Workflow', {}).get('Status', ''):<9} {f['Id'][:90]}", file=out)


def print_v2_linkbacks(findings: list[dict[str, Any]], out: TextIO) -> None:
    """The new Security Hub's findings: status and sh2jira's comment (V2 has no UserDefinedFields or Note)."""
    linked = [f for f in findings if str(f.get("comment", "")).startswith("Tracked in Jira as ")]
    print(f"\nLink-backs on V2 findings ({len(linked)} of {len(findings)}; with --source both, a finding CSPM "
          "carries too is linked on the CSPM side):", file=out)
    for f in linked:
        print(f"  {f.get('status', ''):<12} {f['comment'][:60]}  {f['finding_info']['uid'][:70]}", file=out)
