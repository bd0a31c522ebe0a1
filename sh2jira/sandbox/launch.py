"""Start both stand-ins together, optionally loaded with findings: for `sh2jira sandbox` and `sh2jira demo`."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from ..finding import unwrap_documents
from .jira_app import JiraApp
from .jira_model import DEFAULT_USERS
from .securityhub import SecurityHubApp
from .server import RunningServer, serve

# The sandbox's AWS side: the caller is an organisation's delegated administrator account and sees every
# account's findings, as sh2jira would when run from the Security Hub administrator.
ADMIN_ACCOUNT = "111122223333"
ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "example"
BOT = next(u for u in DEFAULT_USERS if u.handle == "sh2jira-bot")


@dataclass
class Sandbox:
    securityhub: RunningServer
    securityhub_app: SecurityHubApp
    jira: RunningServer
    jira_app: JiraApp

    def jira_token(self) -> str:
        return BOT.api_token if self.jira_app.flavour == "cloud" else BOT.pat

    def jira_user(self) -> str:
        return BOT.email if self.jira_app.flavour == "cloud" else ""

    def stop(self) -> None:
        self.securityhub.stop()
        self.jira.stop()


def start(flavour: str = "cloud", sh_port: int = 0, jira_port: int = 0) -> Sandbox:
    sh_app = SecurityHubApp(default_account=ADMIN_ACCOUNT, administrators={ADMIN_ACCOUNT: ["*"]})
    jira_app = JiraApp(flavour)
    return Sandbox(serve(sh_app, port=sh_port), sh_app, serve(jira_app, port=jira_port), jira_app)


def sample_findings() -> list[Any]:
    """The findings shipped with sh2jira (modelled on real ones, several products)."""
    text = resources.files("sh2jira.samples").joinpath("findings.json").read_text(encoding="utf-8")
    return unwrap_documents(json.loads(text))


def folder_findings(folder: str | Path) -> Iterator[tuple[str, Any]]:
    """(file name, finding) for every finding in the folder's *.json files (sorted, envelopes unwrapped)."""
    for path in sorted(Path(folder).glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            yield path.name, {"__error__": f"not JSON: {exc}"}
            continue
        for finding in unwrap_documents(doc):
            yield path.name, finding


def load(sandbox: Sandbox, findings_dir: str | None, out: TextIO | None = None) -> int:
    """Import findings into the Security Hub stand-in (by their own account and region); return the count."""
    items = list(folder_findings(findings_dir)) if findings_dir else [("samples", f) for f in sample_findings()]
    loaded = 0
    for name, finding in items:
        if isinstance(finding, dict) and "__error__" in finding:
            if out:
                print(f"  {name}: skipped, {finding['__error__']}", file=out)
            continue
        result = sandbox.securityhub_app.load([finding])
        loaded += int(result.get("SuccessCount", 0))
        for failed in result.get("FailedFindings", []):
            if out:
                print(f"  {name}: rejected {failed.get('Id')}: {failed.get('ErrorMessage')}", file=out)
    return loaded


def usage(sandbox: Sandbox) -> str:
    sh, jira = sandbox.securityhub.url, sandbox.jira.url
    return f"""Security Hub stand-in: {sh}
Jira stand-in ({sandbox.jira_app.flavour}): {jira}

Point the tools at them:
  export AWS_ENDPOINT_URL_SECURITYHUB={sh}
  export AWS_ACCESS_KEY_ID={ACCESS_KEY} AWS_SECRET_ACCESS_KEY={SECRET_KEY} AWS_DEFAULT_REGION=us-east-1
  aws securityhub get-findings --endpoint-url {sh} --max-items 5
  python -c "import jira; print(jira.JIRA('{jira}', basic_auth=('{BOT.email}', '{BOT.api_token}')).projects())"
  export SH2JIRA_JIRA_TOKEN={sandbox.jira_token()}   # then: sh2jira run --once -c config.example.yaml
Control API: GET {sh}/_sandbox/state, GET {jira}/_sandbox/state (and /_sandbox/calls, POST /_sandbox/reset)"""


def serve_forever(findings_dir: str | None = None, flavour: str = "cloud", sh_port: int = 0, jira_port: int = 0,
                  out: TextIO | None = None) -> int:
    sandbox = start(flavour, sh_port, jira_port)
    count = load(sandbox, findings_dir, out)
    if out:
        print(usage(sandbox), file=out)
        print(f"Loaded {count} finding(s). Ctrl-C stops.", file=out, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()
    return 0
