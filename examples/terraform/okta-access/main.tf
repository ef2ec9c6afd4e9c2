# An Okta group access flow: people ask to join an Okta group for a while; on approval Sym adds them to the group,
# and removes them when the time is up (or earlier, when someone presses Revoke).

# The token comes from SYM_JWT and the API address from SYM_API_URL (see README.md).
provider "sym" {
  org = var.sym_org
}

############ AWS: the runtime and its secrets ############

# The AWS IAM role Sym assumes to read secrets and write logs. With Sym, the `symopsio/runtime-connector/aws`
# module creates the role and outputs this integration and the runtime below; they are written out here, with
# the settings that module gives them, so the example needs no AWS provider.
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

# Where the flows of this environment run: with the role above.
resource "sym_runtime" "this" {
  name       = var.environment_name
  label      = "Corporate IT"
  context_id = sym_integration.runtime_context.id
}

# Secrets are read from AWS Secrets Manager through the runtime's role, when they are needed. Sym never stores
# their values.
resource "sym_secrets" "this" {
  type  = "aws_secrets_manager"
  name  = "${var.environment_name}-sym-secrets"
  label = "AWS Secrets Manager"

  settings = {
    context_id = sym_integration.runtime_context.id
  }
}

# The Okta API token, a plain secret (the whole secret value is the token). Create it in AWS with the tag the
# runtime's role is allowed to read:
#   aws secretsmanager create-secret --name sym/corp/okta-api-token --secret-string "$OKTA_API_TOKEN" \
#     --tags Key=SymEnv,Value=corp
resource "sym_secret" "okta_api_token" {
  path      = "sym/${var.environment_name}/okta-api-token"
  source_id = sym_secrets.this.id
  label     = "Okta API token"
}

############ Okta ############

# Your Okta org. The token's admin role needs Group Membership Admin and Read Only Admin over the groups below.
# Secret settings hold the ID of a sym_secret, never the secret itself.
resource "sym_integration" "okta" {
  type        = "okta"
  name        = "${var.environment_name}-okta"
  label       = "Okta"
  external_id = var.okta_domain

  settings = {
    api_token_secret = sym_secret.okta_api_token.id
  }
}

# One target per requestable group. The group ID is at the end of the group's URL in the Okta admin console
# (Directory > Groups > the group).
resource "sym_target" "okta_group" {
  for_each = var.okta_groups

  type  = "okta_group"
  name  = "${var.environment_name}-${each.key}"
  label = each.value.label

  settings = {
    group_id = each.value.group_id
  }
}

# Grants a target by adding the requester (found in Okta by their email) to its group, and removes them again.
resource "sym_strategy" "okta" {
  type           = "okta"
  name           = "${var.environment_name}-okta"
  label          = "Okta groups"
  integration_id = sym_integration.okta.id
  targets        = [for key in sort(keys(var.okta_groups)) : sym_target.okta_group[key].id]
}

############ The environment ############

resource "sym_integration" "slack" {
  type        = "slack"
  name        = "${var.environment_name}-slack"
  label       = "Slack"
  external_id = var.slack_workspace_id
}

# Warnings and errors from running flows (for example an Okta API error while granting) are posted here.
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
  label           = "Corporate IT"
  runtime_id      = sym_runtime.this.id
  error_logger_id = sym_error_logger.slack.id

  log_destination_ids = [sym_log_destination.firehose.id]

  # `okta_id` also makes Okta available to the flow implementation, as event.flow.environment.integrations["okta"].
  integrations = {
    slack_id = sym_integration.slack.id
    okta_id  = sym_integration.okta.id
  }
}

############ The flow ############

resource "sym_flow" "okta_access" {
  name  = "okta-access"
  label = "Okta Group Access"

  implementation = file("${path.module}/impl.ts")
  environment_id = sym_environment.this.id

  # Read by impl.ts as event.flow.vars. Values are always strings, so the list is comma-separated.
  vars = {
    request_channel    = var.request_channel
    admin_only_targets = join(",", [for key, group in var.okta_groups : sym_target.okta_group[key].name if group.admin_only])
  }

  params {
    # The strategy makes this an access flow. Requesters pick one of its targets in a `target_id` dropdown that
    # Sym adds to the form.
    strategy_id = sym_strategy.okta.id

    # Requester and approvers see a Revoke button that ends access early.
    allow_revoke = true

    prompt_field {
      name     = "reason"
      label    = "Why do you need access?"
      type     = "string"
      required = true
    }

    # Durations are chosen from a dropdown; impl.ts and the strategy receive them in seconds.
    prompt_field {
      name           = "duration"
      label          = "For how long?"
      type           = "duration"
      allowed_values = ["1h", "4h", "1d"]
      required       = true
    }
  }
}
