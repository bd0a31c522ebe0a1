"""`sh2jira` command line: run, validate, explain, demo, sandbox, schema.

Exit codes: 0 done; 1 a cycle or start-up failed (service unreachable, Jira mismatch, missing secret);
2 the config or rulebook is invalid (nothing was written).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import __version__, logs

log = logging.getLogger("sh2jira")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
DEFAULT_CONFIG_PATHS = ("sh2jira.yaml", "/etc/sh2jira/config.yaml")


def find_config(given: str | None) -> str:
    """--config, else $SH2JIRA_CONFIG, else ./sh2jira.yaml, else /etc/sh2jira/config.yaml (the container's)."""
    if given:
        return given
    if os.environ.get("SH2JIRA_CONFIG"):
        return os.environ["SH2JIRA_CONFIG"]
    for candidate in DEFAULT_CONFIG_PATHS:
        if Path(candidate).exists():
            return candidate
    return DEFAULT_CONFIG_PATHS[0]


def _load(path: str) -> Any:
    from .config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"sh2jira: invalid configuration\n{exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    except FileNotFoundError:
        print(f"sh2jira: config file not found: {path} (pass --config or set SH2JIRA_CONFIG)", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_validate(args: argparse.Namespace) -> int:
    path = find_config(args.config)
    cfg = _load(path)
    rules = len(cfg.rulebook.rules)
    print(f"{path}: OK ({rules} rule{'s' if rules != 1 else ''}, regions {', '.join(cfg.securityhub.regions)})")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from .explain import explain_file

    cfg = _load(find_config(args.config))
    return explain_file(cfg, args.finding, sys.stdout)


def cmd_run(args: argparse.Namespace) -> int:
    from .app import SetupError, build_syncer
    from .health import default_max_age, start_health_server
    from .lease import LeaseHeld
    from .metrics import Metrics
    from .progress import Progress
    from .runner import Runner, _safe, backoff, install_stop_signals

    cfg = _load(find_config(args.config))
    metrics = Metrics()
    once = args.once or args.dry_run
    progress = Progress(sys.stderr, enabled=None if args.log_format == "text" else False)
    for handler in logging.getLogger().handlers:
        progress.attach(handler)
    server = None
    if args.metrics_port and not once:
        server = start_health_server(metrics, args.metrics_host, args.metrics_port,
                                     default_max_age(cfg.run.interval_seconds))
    stop = threading.Event()
    if not once:
        install_stop_signals(stop)
    failures = 0
    try:
        while True:  # long-running mode waits for Jira (and the rulebook's projects) to become usable
            try:
                syncer = build_syncer(cfg, dry_run=args.dry_run, out=sys.stdout, metrics=metrics, progress=progress)
                break
            except SetupError as exc:
                if once:
                    print(f"sh2jira: cannot start: {exc}", file=sys.stderr)
                    return EXIT_FAILED
                failures += 1
                wait = backoff(failures, cfg.run.interval_seconds)
                log.error("start-up failed (%d in a row), retrying in %.0f s: %s", failures, wait, exc)
                if stop.wait(wait):
                    return EXIT_OK

        def cycle() -> Any:
            started = time.monotonic()
            try:
                report = syncer.run_cycle()
            except LeaseHeld:
                raise
            except Exception:
                progress.finish()
                metrics.observe_cycle(None, time.monotonic() - started, False, time.time())
                raise
            progress.finish(report)
            metrics.observe_cycle(report, time.monotonic() - started, True, time.time())
            return report

        if once:
            try:
                report = cycle()
            except LeaseHeld as exc:  # a cron overlap: the other run does the work
                print(f"sh2jira: {exc}", file=sys.stderr)
                return EXIT_OK
            except Exception as exc:  # noqa: BLE001 - a cron job needs an exit code and a readable reason
                print(f"sh2jira: cycle failed: {type(exc).__name__}: {_safe(exc)}", file=sys.stderr)
                return EXIT_FAILED
            print(("dry run: " if args.dry_run else "") + report.summary())
            return EXIT_OK
        runner = Runner(cycle, cfg.run.interval_seconds, stop=stop)
        syncer.should_stop = stop.is_set
        return runner.run_forever()
    finally:
        if server is not None:
            server.stop()


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from .health import default_url, probe

    return probe(args.url or default_url(), out=sys.stdout)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(findings_dir=args.findings, config_path=args.config, flavour=args.flavour, out=sys.stdout)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from .sandbox.launch import serve_forever

    return serve_forever(findings_dir=args.findings, flavour=args.flavour, sh_port=args.securityhub_port,
                         jira_port=args.jira_port, out=sys.stdout)


def cmd_schema(args: argparse.Namespace) -> int:
    from .config import config_json_schema

    text = json.dumps(config_json_schema(), indent=2) + "\n"
    if args.output and args.output != "-":
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sh2jira", description="AWS Security Hub findings → Jira issues, in sync.")
    p.add_argument("--version", action="version", version=f"sh2jira {__version__}")
    p.add_argument("--log-format", choices=["text", "json"], default=os.environ.get("SH2JIRA_LOG_FORMAT", "text"))
    p.add_argument("--log-level", default=os.environ.get("SH2JIRA_LOG_LEVEL"),
                   help="DEBUG, INFO (default; WARNING for demo), WARNING, ERROR")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("-c", "--config", help="config file (default: $SH2JIRA_CONFIG, ./sh2jira.yaml, "
                                               "/etc/sh2jira/config.yaml)")
        return sp

    run = with_config(sub.add_parser("run", help="sync continuously (or once with --once)"))
    run.add_argument("--once", action="store_true", help="run one cycle and exit (for cron)")
    run.add_argument("--dry-run", action="store_true", help="print the plan; write nothing anywhere")
    run.add_argument("--metrics-port", type=int, default=int(os.environ.get("SH2JIRA_METRICS_PORT") or 0) or None,
                     help="serve /metrics and /healthz on this port (long-running mode; env SH2JIRA_METRICS_PORT)")
    run.add_argument("--metrics-host", default=os.environ.get("SH2JIRA_METRICS_HOST", "127.0.0.1"))
    run.set_defaults(func=cmd_run)
    with_config(sub.add_parser("validate", help="check the config and rulebook (exit 0 or 2)")).set_defaults(
        func=cmd_validate)
    ex = with_config(sub.add_parser("explain", help="which rule matches a finding, and the issue it would get"))
    ex.add_argument("finding", help="a JSON file: one finding, {\"Findings\": [...]}, or an EventBridge event")
    ex.set_defaults(func=cmd_explain)
    demo = sub.add_parser("demo", help="run a cycle against the local sandbox with sample findings")
    demo.add_argument("--findings", help="a folder of finding JSON files (default: the shipped samples)")
    demo.add_argument("--config", help="your config/rulebook (its Jira and AWS endpoints are replaced by the sandbox)")
    demo.add_argument("--flavour", choices=["cloud", "datacenter"], default="cloud")
    demo.set_defaults(func=cmd_demo)
    sb = sub.add_parser("sandbox", help="start the local Security Hub and Jira stand-ins")
    sb.add_argument("--findings", help="a folder of finding JSON files to load")
    sb.add_argument("--flavour", choices=["cloud", "datacenter"], default="cloud")
    sb.add_argument("--securityhub-port", type=int, default=0)
    sb.add_argument("--jira-port", type=int, default=0)
    sb.set_defaults(func=cmd_sandbox)
    hc = sub.add_parser("healthcheck", help="probe a running sh2jira's /healthz (exit 0 healthy, 1 not)")
    hc.add_argument("url", nargs="?", help="default: http://127.0.0.1:$SH2JIRA_METRICS_PORT/healthz")
    hc.set_defaults(func=cmd_healthcheck)
    sc = sub.add_parser("schema", help="write the config's JSON Schema (for editors)")
    sc.add_argument("-o", "--output", help="file to write (default: stdout)")
    sc.set_defaults(func=cmd_schema)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.setup(args.log_format, args.log_level or ("WARNING" if args.command == "demo" else "INFO"))
    try:
        return int(args.func(args))
    except SystemExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
