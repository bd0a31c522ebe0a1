"""Run the Security Hub stand-in as a local server: `python -m sh2jira.sandbox.sh_main --port 4510`.

For trying sh2jira, the AWS CLI or boto3 against it without AWS (see the sandbox README section).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from werkzeug.serving import run_simple

from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.sh_scope import ALL_ACCOUNTS, Aggregation


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Security Hub (ASFF) stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4510)
    parser.add_argument("--account", default="123456789012", help="account every access key maps to")
    parser.add_argument("--see-all-accounts", action="store_true",
                        help="the account administers every account (GetFindings returns all findings)")
    parser.add_argument("--throttling", action="store_true", help="enforce the real rate quotas")
    parser.add_argument("--aggregation-region", help="home region of an aggregator that links all regions")
    args = parser.parse_args(argv)
    app = SecurityHubApp(
        default_account=args.account, throttling=args.throttling,
        administrators={args.account: [ALL_ACCOUNTS]} if args.see_all_accounts else None,
        aggregation=Aggregation(args.aggregation_region) if args.aggregation_region else None)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
