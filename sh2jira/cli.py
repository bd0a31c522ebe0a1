"""`sh2jira` command line: run, validate, explain, preview, reconcile, ledger, demo, sandbox, schema.

Exit codes: 0 done; 1 could not run (a cycle or start-up failed: service unreachable, Jira refused the token,
Jira mismatch, missing secret, AWS profile unknown, or any unexpected error); 2 invalid config or usage (a bad
option, config, rulebook or input file; nothing was written); 3 (`run --once`) the cycle ran, but some items
failed and wait in the retry queue for a later cycle (the cycle completed and its report has errors).
Every failure ends in one line on stderr (a JSON object with
--log-format json), never a traceback; --log-level DEBUG adds the traceback of an unexpected error.
The global options (--log-format, --log-level) go before or after the subcommand.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from . import __version__, logs
from .console import describe_error, start_line

log = logging.getLogger("sh2jira")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
RUN_EXIT_CODES = ("exit codes of run --once: 0 everything done; 1 could not run (start-up failed, Jira or AWS "
                  "unreachable, Jira refused the token, Jira lacks a project / issue type / priority); 2 invalid "
                  "config; 3 the cycle ran, but some items failed and wait in the retry queue (alert on it: they "
                  "are retried with back-off and converge once the fault clears)")
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


def _load(path: str, rulebook: str | None = None) -> Any:
    from .config import ConfigError, load_config

    try:
        return load_config(path, rulebook=rulebook)
    except ConfigError as exc:
        report_config_error(exc)
        raise SystemExit(EXIT_CONFIG) from None
    except FileNotFoundError:
        logs.emit("error", f"config file not found: {path} (pass --config or set SH2JIRA_CONFIG)")
        raise SystemExit(EXIT_CONFIG) from None


def report_config_error(exc: Any) -> None:
    """Every problem on its own line, `file:line: key.path: what is wrong` (editors jump to it); in JSON mode
    one object per problem, with file, line and key as fields."""
    if logs.is_json():
        for p in exc.problems:
            logs.emit("error", f"invalid configuration: {p}", file=p.file, line=p.line, key=p.path or None)
        return
    print(f"sh2jira: invalid configuration\n{exc}", file=sys.stderr)


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


def cmd_preview(args: argparse.Namespace) -> int:
    from .preview import run_preview

    path = find_config(args.config)
    old = _load(path)
    new = _load(path, args.rulebook)  # checked as `validate` checks a rulebook: each problem with key and line
    return run_preview(old, new, sys.stdout, as_json=args.json, name=args.rulebook)


def cmd_run(args: argparse.Namespace) -> int:
    from .app import SetupError, build_syncer, jira_token
    from .health import default_max_age, start_health_server
    from .jira_sink import JiraAuthError
    from .lease import LeaseHeld
    from .metrics import Metrics
    from .progress import Progress
    from .reconcile import PeriodicAudit
    from .runner import CycleRun, Runner, _safe, backoff, exit_code, install_stop_signals

    cfg = _load(find_config(args.config))
    metrics = Metrics()
    once = args.once or args.dry_run
    queue = None if once else (args.events or cfg.events.sqs_queue_url)  # event mode: events.py
    if once and args.events:
        logs.emit("error", "--events needs long-running mode: drop --once / --dry-run (see sh2jira run --help)")
        return EXIT_CONFIG
    interval = cfg.events.poll_interval_seconds if queue else cfg.run.interval_seconds
    stop = threading.Event()
    if not once:  # before the first log line: a SIGTERM right after it must stop gracefully, not kill
        install_stop_signals(stop)
    log.info("%s", start_line(cfg, once=once, dry_run=args.dry_run))
    progress = Progress(sys.stderr, enabled=None if args.log_format == "text" else False)
    for handler in logging.getLogger().handlers:
        progress.attach(handler)
    server = None
    if args.metrics_port and not once:
        server = start_health_server(metrics, args.metrics_host, args.metrics_port,
                                     default_max_age(interval),
                                     unhealthy_after=cfg.run.unhealthy_after_failures)
    failures = 0
    try:
        while True:  # long-running mode waits for Jira (and the rulebook's projects) to become usable
            try:
                syncer = build_syncer(cfg, dry_run=args.dry_run, out=sys.stdout, metrics=metrics, progress=progress)
                _watch_linkbacks(progress, syncer)
                break
            except Exception as exc:  # noqa: BLE001 - SetupError, or the AWS environment (an unknown profile)
                reason = str(exc) if isinstance(exc, SetupError) else describe_error(exc)
                metrics.observe_startup_failure(reason, auth=isinstance(exc.__context__, JiraAuthError))
                if once:
                    logs.emit("error", f"cannot start: {reason}")
                    return EXIT_FAILED
                failures += 1
                wait = backoff(failures, interval)
                log.error("start-up failed (%d in a row), retrying in %.0f s: %s", failures, wait, reason)
                if stop.wait(wait):
                    return EXIT_OK

        # The token is read again before each cycle (a rotated Kubernetes secret needs no restart); one from
        # Secrets Manager only after Jira refused it, since every read is a paid call.
        source = cfg.jira.token
        cycle = CycleRun(syncer, metrics, progress=progress, token=None if once else (lambda: jira_token(cfg)),
                         reread_always=source is None or source.aws_secret is None)

        if once:
            try:
                report = cycle()
            except LeaseHeld as exc:  # a cron overlap: the other run does the work
                logs.emit("info", str(exc))
                return EXIT_OK
            except Exception as exc:  # noqa: BLE001 - a cron job needs an exit code and a readable reason
                logs.emit("error", f"cycle failed: {type(exc).__name__}: {_safe(exc)}")
                return EXIT_FAILED
            print_summary(report, dry_run=args.dry_run)
            code = exit_code(report)
            if code != EXIT_OK:  # ran, but not everything is done: a cron job / Kubernetes Job must not look green
                logs.emit("warning", f"{len(report.errors) or report.linkback_failures} item(s) failed and wait "
                                     f"for a retry (exit {code}); first: "
                                     f"{report.errors[0] if report.errors else 'link-backs not written'}")
            return code
        audits = PeriodicAudit(syncer, cfg.reconcile.interval_hours, metrics, cfg.closure.duplicate_resolution)

        def cycle_then_audit() -> Any:  # the audit (every reconcile.interval_hours) follows a cycle that ran
            report = cycle()
            audits.maybe_run()
            return report

        # The lease is kept between cycles and released at SIGTERM; a standby asks for it every quarter lease.
        syncer.keep_lease = True
        idle = None
        if queue:  # between polling cycles, the lease holder acts on the queue's events
            from .events import open_consumer

            idle = open_consumer(cfg, syncer, queue, stop).idle
            log.info("event mode: acting on the events in %s between polling cycles every %d s", queue, interval)
        runner = Runner(cycle_then_audit, interval, stop=stop, standby_wait=cfg.ledger.lease_ttl() / 4, idle=idle)
        syncer.should_stop = stop.is_set
        try:
            return runner.run_forever()
        finally:
            if syncer.lease is not None:
                syncer.lease.release()
    finally:
        if server is not None:
            server.stop()


def _watch_linkbacks(progress: Any, syncer: Any) -> None:
    """Let the progress line show the link-backs still draining (pending in the ledger)."""
    pending = getattr(syncer.ledger, "pending_linkback_count", None)
    if progress.enabled and pending is not None and syncer.linkback.mode != "off":
        progress.watch_linkbacks(pending)


def print_summary(report: Any, *, dry_run: bool) -> None:
    """The cycle's counts on stdout: a text line, or (JSON mode) one JSON object with the counts as fields."""
    if logs.is_json():
        counts = {k: v for k, v in vars(report).items() if isinstance(v, int | bool)}
        logs.emit("info", ("dry run: " if dry_run else "") + "summary", stream=sys.stdout, dry_run=dry_run,
                  errors=len(report.errors), **counts)
        return
    print(("dry run: " if dry_run else "") + report.summary())


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from .health import default_url, probe

    return probe(args.url or default_url(), out=sys.stdout)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(findings=args.findings, config_path=args.config, flavour=args.flavour, out=sys.stdout,
                    source=args.source)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from .sandbox.launch import FindingsPathError, serve_forever

    try:
        return serve_forever(findings=args.findings, flavour=args.flavour, sh_port=args.securityhub_port,
                             jira_port=args.jira_port, out=sys.stdout)
    except FindingsPathError as exc:
        logs.emit("error", f"--findings {exc}")
        return EXIT_CONFIG


def cmd_schema(args: argparse.Namespace) -> int:
    from .config import config_json_schema

    text = json.dumps(config_json_schema(), indent=2) + "\n"
    if args.output and args.output != "-":
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_ledger(args: argparse.Namespace) -> int:
    from .ledgers.commands import cmd_ledger as run_ledger

    return run_ledger(args, _load(find_config(args.config)))


def cmd_reconcile(args: argparse.Namespace) -> int:
    from .app import SetupError
    from .reconcile import run_command

    cfg = _load(find_config(args.config))
    try:
        return run_command(cfg, fix=args.fix, as_json=args.json, out=sys.stdout)
    except SetupError as exc:
        logs.emit("error", f"cannot start: {exc}")
        return EXIT_FAILED


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong and where to look) and exit code 2."""

    def error(self, message: str) -> Any:
        logs.emit("error", f"{message} (see {self.prog} --help)")
        raise SystemExit(EXIT_CONFIG)


def _log_level(text: str) -> str:
    if text.upper() not in logs.LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level: use one of {', '.join(logs.LEVELS)} "
                                         "(--log-level or SH2JIRA_LOG_LEVEL)")
    return text.upper()


def _log_format(text: str) -> str:
    if text.lower() not in logs.FORMATS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log format: use text or json "
                                         "(--log-format or SH2JIRA_LOG_FORMAT)")
    return text.lower()


def _port(text: str) -> int | None:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port or None


def _global_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every command takes, before or after the subcommand. Only the top-level parser has defaults;
    a subcommand's copy leaves the value alone unless it is given there (argparse.SUPPRESS)."""
    keep = argparse.SUPPRESS
    p.add_argument("--log-format", type=_log_format, metavar="{text,json}",
                   default=os.environ.get("SH2JIRA_LOG_FORMAT", "text") if defaults else keep,
                   help="log lines as text or as JSON objects, one per line (env SH2JIRA_LOG_FORMAT)")
    p.add_argument("--log-level", type=_log_level, default=os.environ.get("SH2JIRA_LOG_LEVEL") if defaults else keep,
                   help="DEBUG, INFO (default; WARNING for demo), WARNING, ERROR (env SH2JIRA_LOG_LEVEL)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sh2jira", description="AWS Security Hub findings → Jira issues, in sync.")
    p.add_argument("--version", action="version", version=f"sh2jira {__version__}")
    _global_options(p, defaults=True)
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, *, config: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        _global_options(sp, defaults=False)
        if config:
            sp.add_argument("-c", "--config", help="config file (default: $SH2JIRA_CONFIG, ./sh2jira.yaml, "
                                                   "/etc/sh2jira/config.yaml)")
        return sp

    run = command("run", "sync continuously (or once with --once)")
    run.add_argument("--once", action="store_true", help="run one cycle and exit (for cron); exit 0 all done, "
                     "1 could not run, 3 ran but some items wait for a retry")
    run.epilog = RUN_EXIT_CODES
    run.add_argument("--dry-run", action="store_true", help="print the plan; write nothing anywhere")
    run.add_argument("--events", metavar="QUEUE_URL", help="event mode: act on the Security Hub events EventBridge "
                     "sends to this SQS queue within seconds, and poll every events.poll_interval_seconds "
                     "(sets events.sqs_queue_url; long-running mode only)")
    run.add_argument("--metrics-port", type=_port, default=os.environ.get("SH2JIRA_METRICS_PORT") or None,
                     help="serve /metrics and /healthz on this port (long-running mode; env SH2JIRA_METRICS_PORT)")
    run.add_argument("--metrics-host", default=os.environ.get("SH2JIRA_METRICS_HOST", "127.0.0.1"))
    run.set_defaults(func=cmd_run)
    command("validate", "check the config and rulebook (exit 0 or 2)").set_defaults(func=cmd_validate)
    ex = command("explain", "which rule matches a finding, and the issue it would get")
    ex.add_argument("finding", help="a JSON file: one finding, {\"Findings\": [...]}, or an EventBridge event")
    ex.set_defaults(func=cmd_explain)
    demo = command("demo", "run a cycle against the local sandbox with sample findings")
    demo.add_argument("--findings", help="a finding JSON file, or a folder of them (default: the shipped samples)")
    demo.add_argument("--flavour", choices=["cloud", "datacenter"], default="cloud")
    demo.add_argument("--source", choices=["cspm", "v2", "both"],
                      help="which Security Hub to read (default: the config's securityhub.source)")
    demo.set_defaults(func=cmd_demo)
    sb = command("sandbox", "start the local Security Hub and Jira stand-ins", config=False)
    sb.add_argument("--findings", help="a finding JSON file, or a folder of them (default: the shipped samples)")
    sb.add_argument("--flavour", choices=["cloud", "datacenter"], default="cloud")
    sb.add_argument("--securityhub-port", type=int, default=0)
    sb.add_argument("--jira-port", type=int, default=0)
    sb.set_defaults(func=cmd_sandbox)
    hc = command("healthcheck", "probe a running sh2jira's /healthz (exit 0 healthy, 1 not)", config=False)
    hc.add_argument("url", nargs="?", help="default: http://127.0.0.1:$SH2JIRA_METRICS_PORT/healthz")
    hc.set_defaults(func=cmd_healthcheck)
    pv = command("preview", "what a new rulebook would change: issues re-prioritised, relabelled or re-routed, "
                 "new issues, findings now skipped; writes nothing (exit 0; 2 for a bad config or rulebook)")
    pv.add_argument("--rulebook", required=True, metavar="NEW.yaml",
                    help="the rulebook to compare with the config's own (a rulebook file, as `rulebook:` takes)")
    pv.add_argument("--json", action="store_true", help="one JSON document: counts and every item")
    pv.epilog = ("reads Security Hub read-only: the look-back window (or since the cursor) and the older open "
                 "tracked findings by id, about findings/100 + older open issues/20 GetFindings calls per scope; "
                 "no Jira call, no ledger write. Existing issues never move to another project; a finding a rule "
                 "now skips keeps its issue, no longer edited")
    pv.set_defaults(func=cmd_preview)
    rc = command("reconcile", "audit Security Hub, Jira and the ledger; --fix converges (exit 0 clean, 1 not)")
    rc.add_argument("--fix", action="store_true", help="adopt, re-link, resolve orphans, close duplicates, create "
                                                       "what is missing; never deletes an issue")
    rc.add_argument("--json", action="store_true", help="one JSON object with the counts and the ids behind them")
    rc.set_defaults(func=cmd_reconcile)
    from .ledgers.commands import add_parser as add_ledger

    add_ledger(command).set_defaults(func=cmd_ledger)
    sc = command("schema", "write the config's JSON Schema (for editors)", config=False)
    sc.add_argument("-o", "--output", help="file to write (default: stdout)")
    sc.set_defaults(func=cmd_schema)
    return p


def _wants_json(argv: list[str]) -> bool:
    """Before parsing succeeds: does this command line ask for JSON output (so a usage error is JSON too)?"""
    fmt = os.environ.get("SH2JIRA_LOG_FORMAT", "text")
    for i, arg in enumerate(argv):
        if arg == "--log-format" and i + 1 < len(argv):
            fmt = argv[i + 1]
        elif arg.startswith("--log-format="):
            fmt = arg.split("=", 1)[1]
    return fmt.lower() == "json"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logs.setup("json" if _wants_json(argv) else "text", "WARNING")  # for usage errors, until the real setup
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already reported in one line
        return int(exc.code or 0)
    logs.setup(args.log_format, args.log_level or ("WARNING" if args.command == "demo" else "INFO"))
    try:
        return int(args.func(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    except KeyboardInterrupt:
        logs.emit("error", "interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, and the traceback only when asked for
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            import traceback

            logs.emit("debug", "traceback of the failure below:\n" + traceback.format_exc().rstrip())
        logs.emit("error", f"{args.command} failed: {describe_error(exc)}")
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
