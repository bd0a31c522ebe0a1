# Event mode (events.sqs_queue_url, sh2jira/events.py): the same rule, queue and dead-letter queue as
# deploy/cloudformation/events.yaml. Deploy it in the region whose EventBridge receives the findings (the
# aggregation region with cross-region aggregation).

variable "queue_name" {
  type    = string
  default = "sh2jira-findings"
}

variable "max_receive_count" {
  type    = number
  default = 5
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.queue_name}-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "findings" {
  name                       = var.queue_name
  visibility_timeout_seconds = 300
  message_retention_seconds  = 345600
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_cloudwatch_event_rule" "findings" {
  name        = "sh2jira-findings"
  description = "Security Hub finding events for sh2jira"
  event_pattern = jsonencode({
    source        = ["aws.securityhub"]
    "detail-type" = ["Security Hub Findings - Imported", "Findings Imported V2"]
  })
}

resource "aws_cloudwatch_event_target" "findings" {
  rule      = aws_cloudwatch_event_rule.findings.name
  target_id = "sh2jira-findings"
  arn       = aws_sqs_queue.findings.arn
}

resource "aws_sqs_queue_policy" "eventbridge_may_send" {
  queue_url = aws_sqs_queue.findings.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeFindingsRule"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.findings.arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.findings.arn } }
    }]
  })
}

output "queue_url" {
  description = "events.sqs_queue_url (or sh2jira run --events)"
  value       = aws_sqs_queue.findings.url
}

output "dead_letter_queue_url" {
  value = aws_sqs_queue.dead_letter.url
}
