"""Start both stand-ins together, optionally loaded with findings: for `sh2jira sandbox` and `sh2jira demo`.

`sh2jira sandbox` binds whatever ports it is given (port 0: any free ones), so a fixed config such as
config.example.yaml (Jira at :8080) would point elsewhere. It therefore writes a config of its own, pointed at
the ports it really got, and prints one command that runs sh2jira against it as printed.
"""

from __future__ import annotations

import json
import shlex
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import yaml

from ..finding import unwrap_documents
from ..ocsf import is_ocsf
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


class FindingsPathError(ValueError):
    """A --findings path that does not exist or holds no JSON files."""


def findings_files(path: str | Path) -> list[Path]:
    """The JSON files a --findings path names: the file itself, or a folder's *.json files (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise FindingsPathError(f"{path}: the folder has no *.json files")
        return files
    if path.is_file():
        return [path]
    raise FindingsPathError(f"{path}: no such file or folder")


def path_findings(path: str | Path) -> Iterator[tuple[str, Any]]:
    """(file name, finding) for a JSON file, or for every *.json file of a folder; envelopes unwrapped.
    A file that is not JSON yields one `{"__error__": ...}` item, so the other files still load."""
    for file in findings_files(path):
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            yield file.name, {"__error__": f"not JSON: {exc}"}
            continue
        for finding in unwrap_documents(doc):
            yield file.name, finding


def sample_findings_v2() -> list[Any]:
    """The shipped OCSF findings of the new Security Hub (three share their identity with findings.json)."""
    text = resources.files("sh2jira.samples").joinpath("findings-v2.json").read_text(encoding="utf-8")
    return unwrap_documents(json.loads(text))


def load(sandbox: Sandbox, findings: str | None, out: TextIO | None = None, *, v2_samples: bool = False) -> int:
    """Import findings (a file or a folder; default: the shipped samples, with `v2_samples` the OCSF ones too) into
    the Security Hub stand-in, by their own account and region: ASFF through BatchImportFindings' rules, OCSF into
    the new Security Hub's store; return the count. Raises FindingsPathError for a path that is not there."""
    items = list(path_findings(findings)) if findings else [("samples", f) for f in sample_findings()]
    if not findings and v2_samples:
        items += [("samples-v2", f) for f in sample_findings_v2()]
    loaded = 0
    for name, finding in items:
        if isinstance(finding, dict) and "__error__" in finding:
            if out:
                print(f"  {name}: skipped, {finding['__error__']}", file=out)
            continue
        store = sandbox.securityhub_app.v2 if is_ocsf(finding) else sandbox.securityhub_app
        result = store.load([finding])
        loaded += int(result.get("SuccessCount", 0))
        for failed in result.get("FailedFindings", []):
            if out:
                print(f"  {name}: rejected {failed.get('Id')}: {failed.get('ErrorMessage')}", file=out)
    return loaded


def write_config(sandbox: Sandbox, folder: str | Path) -> Path:
    """A ready config for this sandbox: the demo's rulebook, with Jira, Security Hub endpoint, flavour and ledger
    set to what is running now. Returns its path (`folder`/config.yaml)."""
    text = resources.files("sh2jira.samples").joinpath("demo.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["securityhub"]["endpoint_url"] = sandbox.securityhub.url
    data["jira"].update({"url": sandbox.jira.url, "user": sandbox.jira_user(), "flavour": sandbox.jira_app.flavour})
    path = Path(folder) / "config.yaml"
    data["ledger"] = {"path": str(Path(folder) / "ledger.sqlite3")}
    head = ("# Written by `sh2jira sandbox` for the stand-ins it started; gone when it stops.\n"
            "# The rulebook is the demo's (sh2jira/samples/demo.yaml); config.example.yaml documents every key.\n")
    path.write_text(head + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_command(sandbox: Sandbox, config: Path) -> str:
    """One shell line that runs a real cycle against this sandbox, as printed (no other setup needed)."""
    env = {"SH2JIRA_JIRA_TOKEN": sandbox.jira_token(), "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env -u AWS_PROFILE {assigns} sh2jira run --once -c {shlex.quote(str(config))}"


def usage(sandbox: Sandbox, config: Path | None = None) -> str:
    sh, jira = sandbox.securityhub.url, sandbox.jira.url
    run = (f"""
Run sh2jira against them (a config for these ports is written at {config}):
  {run_command(sandbox, config)}
""" if config is not None else "")
    return f"""Security Hub stand-in: {sh}
Jira stand-in ({sandbox.jira_app.flavour}): {jira}
{run}
Point other tools at them:
  export AWS_ENDPOINT_URL_SECURITYHUB={sh}
  export AWS_ACCESS_KEY_ID={ACCESS_KEY} AWS_SECRET_ACCESS_KEY={SECRET_KEY} AWS_DEFAULT_REGION=us-east-1
  aws securityhub get-findings --endpoint-url {sh} --max-items 5
  python -c "import jira; print(jira.JIRA('{jira}', basic_auth=('{BOT.email}', '{BOT.api_token}')).projects())"
Control API: GET {sh}/_sandbox/state, GET {jira}/_sandbox/state (and /_sandbox/calls, POST /_sandbox/reset)"""


def serve_forever(findings: str | None = None, flavour: str = "cloud", sh_port: int = 0, jira_port: int = 0,
                  out: TextIO | None = None) -> int:
    """Run the stand-ins until SIGINT/SIGTERM. Raises FindingsPathError before starting for a bad --findings."""
    if findings:
        findings_files(findings)  # a bad path fails before any port is taken
    sandbox = start(flavour, sh_port, jira_port)
    with tempfile.TemporaryDirectory(prefix="sh2jira-sandbox-") as folder:
        try:
            count = load(sandbox, findings, out)
            config = write_config(sandbox, folder)
            if out:
                print(usage(sandbox, config), file=out)
                print(f"Loaded {count} finding(s). Ctrl-C stops.", file=out, flush=True)
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            stop.wait()
        finally:
            sandbox.stop()
    return 0
