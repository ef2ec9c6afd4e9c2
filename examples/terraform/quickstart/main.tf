terraform {
  required_providers {
    sym = {
      source = "symopsio/sym"
    }
  }
}

# The token comes from SYM_JWT and the API address from SYM_API_URL (see README.md).
provider "sym" {
  org = var.sym_org
}

# The Slack workspace that requests and approvals happen in.
resource "sym_integration" "slack" {
  type        = "slack"
  name        = "${var.environment_name}-slack"
  label       = "Slack"
  external_id = var.slack_workspace_id
}

# Where flows run. This quickstart grants nothing in AWS, so the runtime needs no permission context.
resource "sym_runtime" "this" {
  name  = var.environment_name
  label = "Quickstart runtime"
}

# Errors and warnings from running flows are posted here. The channel must exist in Slack.
resource "sym_error_logger" "slack" {
  integration_id = sym_integration.slack.id
  destination    = "#sym-errors"
}

resource "sym_environment" "this" {
  name            = var.environment_name
  label           = "Quickstart"
  runtime_id      = sym_runtime.this.id
  error_logger_id = sym_error_logger.slack.id

  integrations = {
    slack_id = sym_integration.slack.id
  }
}

# An approval-only flow: no strategy, so nothing is granted; an approver just says yes or no.
# Approval-only flows have no duration.
resource "sym_flow" "approval" {
  name  = "approval"
  label = "Approval"

  implementation = file("${path.module}/impl.ts")
  environment_id = sym_environment.this.id

  params {
    prompt_field {
      name     = "reason"
      label    = "What needs approving, and why?"
      type     = "string"
      required = true
    }
  }
}

# The one thing the access flow can grant. A `custom` target takes any settings; the strategy receives
# the target's name and settings when it grants and revokes access.
resource "sym_target" "staging_db" {
  type  = "custom"
  name  = "staging-db"
  label = "Staging database"

  settings = {
    identifier = "staging-db"
  }
}

# An `http` strategy needs no integration: it POSTs each grant (escalate) and removal (de-escalate) to a URL of
# yours, as JSON, and your endpoint does the granting.
resource "sym_strategy" "http" {
  type    = "http"
  name    = "${var.environment_name}-http"
  label   = "HTTP"
  targets = [sym_target.staging_db.id]

  settings = {
    url = var.access_webhook_url
  }
}

# An access flow: on approval the strategy grants the chosen target for the requested duration,
# then takes it away again (or earlier, when someone presses Revoke).
resource "sym_flow" "access" {
  name  = "access"
  label = "Temporary access"

  implementation = file("${path.module}/impl.ts")
  environment_id = sym_environment.this.id

  params {
    strategy_id  = sym_strategy.http.id
    allow_revoke = true

    prompt_field {
      name     = "reason"
      label    = "Why do you need access?"
      type     = "string"
      required = true
    }

    prompt_field {
      name           = "duration"
      label          = "For how long?"
      type           = "duration"
      allowed_values = ["30m", "1h", "1d"]
      required       = true
    }
  }
}
