"""deploy/ for event mode: the EventBridge rule, the queue and its dead-letter queue as CloudFormation and Terraform
agree with each other, with what sh2jira consumes (events.py) and with docs/iam-policy.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from sh2jira.events import EVENT_TYPES
from sh2jira.sandbox.eventbridge import RULE_PATTERN

REPO = Path(__file__).resolve().parents[1]
CFN = REPO / "deploy" / "cloudformation" / "events.yaml"
TF = REPO / "deploy" / "terraform" / "events.tf"


def cfn() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CFN.read_text(encoding="utf-8"))  # long-form intrinsics: plain YAML
    return doc["Resources"]


def test_the_rule_sends_the_finding_events_sh2jira_reads_to_the_queue() -> None:
    res = cfn()
    rule = res["FindingsRule"]["Properties"]
    assert rule["EventPattern"] == RULE_PATTERN and sorted(RULE_PATTERN["detail-type"]) == sorted(EVENT_TYPES)
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": ["FindingsQueue", "Arn"]}]


def test_the_queue_has_a_dead_letter_queue_long_polling_and_encryption_eventbridge_can_use() -> None:
    res = cfn()
    queue = res["FindingsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert queue["ReceiveMessageWaitTimeSeconds"] == 20 and queue["VisibilityTimeout"] >= 60
    assert queue["SqsManagedSseEnabled"] and res["DeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"]
    assert res["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


def test_only_the_rule_may_send_to_the_queue() -> None:
    policy = cfn()["EventBridgeMaySend"]["Properties"]["PolicyDocument"]
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["FindingsRule", "Arn"]}}}


def test_terraform_defines_the_same_rule_queues_and_policy() -> None:
    tf = TF.read_text(encoding="utf-8")
    res = cfn()
    for kind in ("aws_sqs_queue", "aws_cloudwatch_event_rule", "aws_cloudwatch_event_target", "aws_sqs_queue_policy"):
        assert f'resource "{kind}"' in tf
    assert all(f'"{t}"' in tf for t in EVENT_TYPES) and '["aws.securityhub"]' in tf
    assert "deadLetterTargetArn = aws_sqs_queue.dead_letter.arn" in tf
    assert re.search(r'variable "max_receive_count" \{\s*type\s*= number\s*default = 5', tf)
    assert tf.count("sqs_managed_sse_enabled   = true") + tf.count("sqs_managed_sse_enabled    = true") == 2
    queue = res["FindingsQueue"]["Properties"]
    assert f"visibility_timeout_seconds = {queue['VisibilityTimeout']}" in tf
    assert f"receive_wait_time_seconds  = {queue['ReceiveMessageWaitTimeSeconds']}" in tf
    assert '"aws:SourceArn" = aws_cloudwatch_event_rule.findings.arn' in tf


def test_the_iam_policy_lets_sh2jira_consume_the_queue_the_templates_create() -> None:
    doc = json.loads((REPO / "docs" / "iam-policy.json").read_text(encoding="utf-8"))
    [statement] = [s for s in doc["Statement"] if s["Sid"] == "EventQueue"]
    assert set(statement["Action"]) == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
    name = yaml.safe_load(CFN.read_text(encoding="utf-8"))["Parameters"]["QueueName"]["Default"]
    assert statement["Resource"].endswith(f":{name}") and f'default = "{name}"' in TF.read_text(encoding="utf-8")
