"""`sh2jira ledger init | export | import`: create the shared table, and move a ledger between backends.

Typical move from one process on SQLite to replicas on DynamoDB: stop sh2jira, `ledger export -c old.yaml -o
ledger.jsonl`, `ledger init -c new.yaml`, `ledger import -c new.yaml ledger.jsonl`, start the replicas.
Exit codes: 0 done; 1 could not run (AWS unreachable or refusing); 2 bad input, or a target that is not empty.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


def cmd_ledger(args: argparse.Namespace, cfg: Any) -> int:
    from .. import logs
    from ..app import open_ledger
    from .export import LedgerImportError, load_into, parse_lines, read_ledger, write_lines

    if args.action == "init":
        return _init(cfg)
    ledger = open_ledger(cfg)
    try:
        if args.action == "export":
            dump = read_ledger(ledger)
            if args.output:
                with open(args.output, "w", encoding="utf-8") as out:
                    n = write_lines(dump, out)
            else:
                n = write_lines(dump, sys.stdout)
            logs.emit("info", f"exported {len(dump.entries)} entries, {len(dump.cursors)} cursors and "
                              f"{len(dump.retries)} retry items ({n} records)")
            return EXIT_OK
        try:
            with open(args.file, encoding="utf-8") as stream:
                dump = parse_lines(stream, args.file)
            n = load_into(ledger, dump)
        except (LedgerImportError, OSError) as exc:
            logs.emit("error", f"ledger import: {exc}")
            return EXIT_INPUT
        print(f"imported {len(dump.entries)} entries, {len(dump.cursors)} cursors and {len(dump.retries)} retry "
              f"items ({n} records)")
        return EXIT_OK
    finally:
        ledger.close()


def _init(cfg: Any) -> int:
    from .dynamo_schema import TTL_ATTRIBUTE, create_table
    from .dynamodb import dynamodb_client
    from .sqlite import SqliteLedger

    led = cfg.ledger
    if led.backend == "sqlite":
        SqliteLedger(led.path).close()
        print(f"sqlite ledger ready at {led.path}")
        return EXIT_OK
    created = create_table(dynamodb_client(led.region, led.endpoint_url), led.table)
    print(f"{'created' if created else 'found'} DynamoDB table {led.table} (on-demand capacity, TTL on "
          f"{TTL_ATTRIBUTE})")
    return EXIT_OK


def add_parser(command: Any) -> Any:
    """The `ledger` subcommand (cli.py's `command` helper makes the parser with -c and the global options)."""
    p = command("ledger", "init the DynamoDB table; export / import a ledger as JSON lines")
    sub = p.add_subparsers(dest="action", required=True)
    init = sub.add_parser("init", help="create the ledger (DynamoDB: the table, on-demand, with TTL)")
    ex = sub.add_parser("export", help="write the ledger as JSON lines")
    ex.add_argument("-o", "--output", help="file to write (default: stdout)")
    im = sub.add_parser("import", help="read JSON lines into an empty ledger")
    im.add_argument("file", help="a file written by `sh2jira ledger export`")
    for action in (init, ex, im):  # -c also after the action (`ledger init -c x.yaml`)
        action.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file")
    return p
