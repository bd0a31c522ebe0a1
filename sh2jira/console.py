"""What the command line says about itself: the start line of `run`, and one-line reasons for failures.

A user error must read as one line that says what to fix, never a traceback (`cli.main` turns anything
unexpected into one line too, with the traceback only at --log-level DEBUG).
"""

from __future__ import annotations

import os
from typing import Any

from .app import hub_scopes, rulebook_targets


def start_line(cfg: Any, *, once: bool, dry_run: bool) -> str:
    """What `run` will read and where it writes, in one line: the first thing an operator checks in the log."""
    sh, jira = cfg.securityhub, cfg.jira
    if sh.accounts:
        accounts = "accounts " + ", ".join(f"{a.account_id} (role {a.role_name})" for a in sh.accounts)
    else:
        accounts = "the default credential chain's account"
        if os.environ.get("AWS_PROFILE"):
            accounts += f" (AWS_PROFILE {os.environ['AWS_PROFILE']})"
    endpoint = (sh.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_SECURITYHUB") or os.environ.get("AWS_ENDPOINT_URL")
                or "AWS")
    regions = ", ".join(sh.regions) + (" (aggregation home region)" if sh.aggregation else "")
    projects, _ = rulebook_targets(cfg.rulebook)
    mode = "dry run (writes nothing)" if dry_run else "one cycle" if once else (
        f"every {cfg.run.interval_seconds} s")
    return (f"{mode}: reading Security Hub findings in {regions} from {accounts} at {endpoint} "
            f"({len(hub_scopes(cfg))} scope(s)); writing Jira issues at {jira.url} "
            f"(projects {', '.join(sorted(projects)) or 'none: every rule skips'}), "
            f"ledger {ledger_name(cfg)}, link-back {sh.link_back}")


def ledger_name(cfg: Any) -> str:
    """Where the ledger is: the SQLite file, or the DynamoDB table (with its region / endpoint when set)."""
    led = cfg.ledger
    if led.backend == "sqlite":
        return str(led.path)
    where = ", ".join(x for x in (led.region or "", led.endpoint_url or "") if x)
    return f"dynamodb table {led.table}" + (f" ({where})" if where else "")


def describe_error(exc: BaseException) -> str:
    """One line for an exception that stopped a command: what went wrong, in the user's terms where known."""
    from botocore import exceptions as aws

    if isinstance(exc, aws.ProfileNotFound):
        profile = getattr(exc, "kwargs", {}).get("profile", "")
        return (f"AWS profile {profile!r} is not configured: check AWS_PROFILE and ~/.aws/config "
                "(or unset AWS_PROFILE to use the default credential chain)")
    if isinstance(exc, aws.NoCredentialsError):
        return ("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run "
                "with an instance or task role")
    if isinstance(exc, aws.BotoCoreError):
        return f"AWS: {_first_line(exc)}"
    from .runner import _safe

    return f"{type(exc).__name__}: {_safe(exc)}"


def _first_line(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0][:500]
