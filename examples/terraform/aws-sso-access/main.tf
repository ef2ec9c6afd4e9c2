# An AWS IAM Identity Center (AWS SSO) access flow: people ask for a permission set in an AWS account for a while;
# on approval Sym creates the account assignment, and deletes it when the time is up (or on Revoke). AWS sessions
# already started last until they expire, so keep the permission sets' session duration short.

# The token comes from SYM_JWT and the API address from SYM_API_URL (see README.md).
provider "sym" {
  org = var.sym_org
}

############ AWS: the runtime and the Identity Center connection ############

# The AWS IAM role Sym assumes first. With Sym, the `symopsio/runtime-connector/aws` module creates the role and
# outputs this integration and the runtime below; they are written out here, with the settings that module gives
# them, so the example needs no AWS provider.
resource "sym_integration" "runtime_context" {
  type        = "permission_context"
  name        = "${var.environment_name}-runtime-context"
  external_id = var.aws_account_id

  settings = {
    cloud       = "aws"
    region      = var.aws_region
    role_arn    = "arn:aws:iam::${var.aws_account_id}:role/sym/SymRuntime${title(var.environment_name)}"
    external_id = var.runtime_role_external_id
    account_id  = var.aws_account_id
  }
}

resource "sym_runtime" "this" {
  name       = var.environment_name
  label      = "Cloud accounts"
  context_id = sym_integration.runtime_context.id
}

# The role in the Identity Center account that may manage account assignments; the runtime's role assumes it.
# With Sym, the `symopsio/sso-connector/aws` module creates it, and you would write
# `settings = module.sso_connector.settings` and `external_id = module.sso_connector.settings["instance_arn"]`.
resource "sym_integration" "sso_context" {
  type        = "permission_context"
  name        = "${var.environment_name}-sso"
  label       = "IAM Identity Center"
  external_id = var.sso_instance_arn

  settings = {
    cloud        = "aws"
    instance_arn = var.sso_instance_arn
    region       = var.sso_region
    role_arn     = "arn:aws:iam::${var.sso_account_id}:role/sym/SymSSO${title(var.environment_name)}"
  }
}

############ What can be requested, and how it is granted ############

# One target per permission set and account: granting it assigns the requester's Identity Center user (found by
# their email) to the permission set in that account.
resource "sym_target" "permission_set" {
  for_each = var.permission_sets

  type  = "aws_sso_permission_set"
  name  = "${var.environment_name}-${each.key}"
  label = each.value.label

  settings = {
    permission_set_arn = each.value.permission_set_arn
    account_id         = each.value.account_id
  }
}

resource "sym_strategy" "aws_sso" {
  type           = "aws_sso"
  name           = "${var.environment_name}-aws-sso"
  label          = "AWS IAM Identity Center"
  integration_id = sym_integration.sso_context.id
  targets        = [for key in sort(keys(var.permission_sets)) : sym_target.permission_set[key].id]

  # The instance the account assignments are made in; required for `aws_sso`.
  settings = {
    instance_arn = var.sso_instance_arn
  }
}

############ The environment ############

resource "sym_integration" "slack" {
  type        = "slack"
  name        = "${var.environment_name}-slack"
  label       = "Slack"
  external_id = var.slack_workspace_id
}

# Warnings and errors from running flows (for example an assignment AWS refused) are posted here.
resource "sym_error_logger" "slack" {
  integration_id = sym_integration.slack.id
  destination    = "#sym-errors"
}

# Every audit entry goes to a Kinesis Data Firehose delivery stream (for example into S3), written with the
# runtime's role. Sym's `kinesis-firehose-connector` module creates such a stream.
resource "sym_log_destination" "firehose" {
  type           = "kinesis_firehose"
  integration_id = sym_integration.runtime_context.id

  settings = {
    stream_name = var.log_stream_name
  }
}

resource "sym_environment" "this" {
  name            = var.environment_name
  label           = "Cloud accounts"
  runtime_id      = sym_runtime.this.id
  error_logger_id = sym_error_logger.slack.id

  log_destination_ids = [sym_log_destination.firehose.id]

  integrations = {
    slack_id = sym_integration.slack.id
  }
}

############ The flow ############

resource "sym_flow" "aws_sso_access" {
  name  = "aws-sso-access"
  label = "AWS Access"

  implementation = file("${path.module}/impl.ts")
  environment_id = sym_environment.this.id

  # Read by impl.ts as event.flow.vars. Values are always strings, so the list is comma-separated.
  vars = {
    request_channel            = var.request_channel
    production_request_channel = var.production_request_channel
    production_targets         = join(",", [for key, permission_set in var.permission_sets : sym_target.permission_set[key].name if permission_set.production])
  }

  params {
    # The strategy makes this an access flow; requesters pick one of its targets from a dropdown.
    strategy_id = sym_strategy.aws_sso.id

    # Access ends on its own after the requested duration, and requester or approvers can end it early.
    allow_revoke          = true
    schedule_deescalation = true

    # Only from Slack: AWS access should be asked for by a person, not by automation.
    allowed_sources = ["slack"]

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
      allowed_values = ["30m", "1h", "4h", "12h"]
      required       = true
    }
  }
}
