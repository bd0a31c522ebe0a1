# The shared ledger for several sh2jira replicas (ledger.backend: dynamodb): the same table `sh2jira ledger init`
# creates (sh2jira/ledgers/dynamo_schema.py). On-demand capacity; TTL removes a lease nobody renews.

variable "ledger_table_name" {
  type    = string
  default = "sh2jira-ledger"
}

resource "aws_dynamodb_table" "sh2jira_ledger" {
  name         = var.ledger_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "state"
    type = "S"
  }
  attribute {
    name = "key"
    type = "S"
  }
  attribute {
    name = "alias"
    type = "S"
  }
  attribute {
    name = "issue_key"
    type = "S"
  }
  attribute {
    name = "lbq"
    type = "S"
  }
  attribute {
    name = "rq"
    type = "S"
  }
  attribute {
    name = "r_next_try"
    type = "N"
  }

  global_secondary_index {
    name            = "by_state"
    hash_key        = "state"
    range_key       = "key"
    projection_type = "KEYS_ONLY"
  }
  global_secondary_index {
    name            = "by_alias"
    hash_key        = "alias"
    projection_type = "KEYS_ONLY"
  }
  global_secondary_index {
    name            = "by_issue"
    hash_key        = "issue_key"
    projection_type = "KEYS_ONLY"
  }
  global_secondary_index {
    name            = "linkback"
    hash_key        = "lbq"
    range_key       = "key"
    projection_type = "KEYS_ONLY"
  }
  global_secondary_index {
    name            = "retries"
    hash_key        = "rq"
    range_key       = "r_next_try"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }

  lifecycle {
    prevent_destroy = true # a rebuild from Jira works, but costs a full search
  }
}

output "ledger_table_arn" {
  value = aws_dynamodb_table.sh2jira_ledger.arn
}
