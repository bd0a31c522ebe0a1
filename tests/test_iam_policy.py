"""docs/iam-policy.json grants exactly the AWS actions the code calls: a static scan of sh2jira/ (not the
sandbox) for boto3 operation calls, compared both ways with the policy."""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "sh2jira"
POLICY = REPO / "docs" / "iam-policy.json"
SERVICES = ("securityhub", "secretsmanager", "sts", "dynamodb", "sqs")


@cache
def operations() -> dict[str, frozenset[str]]:
    """snake_case and PascalCase operation name → IAM actions ("securityhub:GetFindings") it may be."""
    session = botocore.session.get_session()
    found: dict[str, set[str]] = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        for op in model.operation_names:
            action = f"{model.signing_name}:{op}"
            found.setdefault(xform_name(op), set()).add(action)
            found.setdefault(op, set()).add(action)
    return {name: frozenset(actions) for name, actions in found.items()}


def calls_in(source: str, filename: str = "<source>") -> dict[str, set[str]]:
    """IAM action → where the source calls it: attribute calls named like an operation
    (`client.get_secret_value(...)`) and string arguments naming one (`self._call(r, "get_findings")`,
    `get_paginator("get_findings")`, `getattr(client, "GetFindings")`)."""
    ops = operations()
    out: dict[str, set[str]] = {}

    def note(name: str, node: ast.AST) -> None:
        for action in ops.get(name, ()):
            out.setdefault(action, set()).add(f"{filename}:{getattr(node, 'lineno', 0)}")

    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute):
            note(node.func.attr, node)
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                note(arg.value, node)
    return out


def client_services_in(source: str) -> set[str]:
    """Services passed to `.client("...")` / `boto3.client("...")` (first argument or service_name=)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client":
            candidates = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "service_name")]
            names |= {c.value for c in candidates if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return names


def package_sources() -> list[Path]:
    files = [p for p in sorted(PACKAGE.rglob("*.py")) if "sandbox" not in p.relative_to(PACKAGE).parts]
    assert len(files) > 10, "the scan found too few modules to be scanning the package"
    return files


# Operations IAM authorises through other actions: a DynamoDB transaction needs the item actions it contains
# (the ledger's transactions hold only Puts), there is no `dynamodb:TransactWriteItems` action.
# The new Security Hub's operations are authorised by the CSPM actions (botocore's model: "GetFindings and
# GetFindingsV2 both use securityhub:GetFindings in the Action element of an IAM policy statement", likewise
# BatchUpdateFindingsV2 → securityhub:BatchUpdateFindings); there is no securityhub:GetFindingsV2 action.
# SQS authorises DeleteMessageBatch through sqs:DeleteMessage (there is no batch action).
AUTHORISED_AS = {"dynamodb:TransactWriteItems": "dynamodb:PutItem", "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
                 "securityhub:GetFindingsV2": "securityhub:GetFindings",
                 "securityhub:BatchUpdateFindingsV2": "securityhub:BatchUpdateFindings"}


def code_actions() -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for path in package_sources():
        for action, places in calls_in(path.read_text(encoding="utf-8"), str(path.relative_to(REPO))).items():
            merged.setdefault(AUTHORISED_AS.get(action, action), set()).update(places)
    return merged


def policy() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(POLICY.read_text(encoding="utf-8"))
    return data


def granted() -> set[str]:
    actions: set[str] = set()
    for statement in policy()["Statement"]:
        value = statement["Action"]
        actions |= {value} if isinstance(value, str) else set(value)
    return actions


# -- the scanner itself -----------------------------------------------------------------------------------------
def test_scanner_finds_each_kind_of_call_and_ignores_look_alikes() -> None:
    source = '''
client.get_secret_value(SecretId="x")
self._call(region, "batch_update_findings", FindingIdentifiers=[])
getattr(client, "GetFindings")()
client.get_paginator(operation_name="list_finding_aggregators")
sts.assume_role(RoleArn="arn", RoleSessionName="s")
self.hub.update(region, ids, values)          # our own method, not an AWS operation
metrics.count_call("securityhub", "GetFindings")  # names an operation in a call: matched (conservative)
x = "describe_hub"                            # not a call argument: ignored
'''
    found = calls_in(source)
    assert set(found) == {
        "secretsmanager:GetSecretValue", "securityhub:BatchUpdateFindings", "securityhub:GetFindings",
        "securityhub:ListFindingAggregators", "sts:AssumeRole"}
    assert found["securityhub:GetFindings"] == {"<source>:4", "<source>:8"}


def test_scanner_sees_the_calls_the_package_is_known_to_make() -> None:
    actions = code_actions()
    assert any(p.startswith("sh2jira/securityhub.py") for p in actions["securityhub:GetFindings"])
    assert any(p.startswith("sh2jira/secrets.py") for p in actions["secretsmanager:GetSecretValue"])


def test_the_v2_source_is_scanned_and_covered_by_the_cspm_actions() -> None:
    merged: dict[str, set[str]] = {}
    for path in package_sources():
        for action, places in calls_in(path.read_text(encoding="utf-8"), str(path.relative_to(REPO))).items():
            merged.setdefault(action, set()).update(places)
    assert any(p.startswith("sh2jira/securityhub_v2.py") for p in merged["securityhub:GetFindingsV2"])
    assert any(p.startswith("sh2jira/securityhub_v2.py") for p in merged["securityhub:BatchUpdateFindingsV2"])
    assert {"securityhub:GetFindings", "securityhub:BatchUpdateFindings"} <= granted()


def test_the_package_only_makes_clients_for_the_scanned_services() -> None:
    """A client for another service would escape the scan: extend SERVICES (and the policy) first."""
    used = set().union(*(client_services_in(p.read_text(encoding="utf-8")) for p in package_sources()))
    assert used <= set(SERVICES), f"clients for unscanned services: {sorted(used - set(SERVICES))}"


# -- the policy against the code ----------------------------------------------------------------------------------
def test_policy_grants_every_action_the_code_calls() -> None:
    missing = {a: sorted(p) for a, p in code_actions().items() if a not in granted()}
    assert not missing, f"docs/iam-policy.json lacks actions the code calls: {missing}"


def test_policy_grants_nothing_the_code_does_not_call() -> None:
    unused = granted() - set(code_actions())
    assert not unused, f"docs/iam-policy.json grants actions no code calls: {sorted(unused)}"


def test_policy_shape_is_least_privilege() -> None:
    doc = policy()
    assert doc["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in doc["Statement"]]
    assert len(sids) == len(set(sids))
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), "no wildcard actions"
        if any(a.startswith("secretsmanager:") for a in actions):
            resource = statement["Resource"]
            assert resource != "*" and resource.startswith("arn:aws:secretsmanager:"), \
                "secret access is scoped to the token's secret"


@pytest.mark.parametrize("action", ["securityhub:GetFindings", "securityhub:BatchUpdateFindings",
                                    "secretsmanager:GetSecretValue"])
def test_every_granted_action_is_a_real_operation(action: str) -> None:
    assert action in granted()
    assert action in operations()[action.split(":", 1)[1]]
