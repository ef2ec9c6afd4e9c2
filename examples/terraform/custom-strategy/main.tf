# A custom strategy flow: access to a system Sym has no built-in strategy for, here the roles of an in-house
# back-office. The strategy is your own code (strategy.ts), called on approval to grant a role and when access
# ends to take it away again, with an API key Sym reads from AWS Secrets Manager.

# The token comes from SYM_JWT and the API address from SYM_API_URL (see README.md).
provider "sym" {
  org = var.sym_org
}

############ AWS: the runtime and its secrets ############

# The AWS IAM role Sym assumes to read the API key. With Sym, the `symopsio/runtime-connector/aws` module creates
# the role and outputs this integration and the runtime below; they are written out here, with the settings that
# module gives them, so the example needs no AWS provider.
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
  label      = "Back-office"
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

# The back-office API key, one key of a JSON secret that holds all of this environment's credentials. Create it
# in AWS with the tag the runtime's role is allowed to read:
#   aws secretsmanager create-secret --name sym/backoffice/credentials \
#     --secret-string '{"admin_api_key": "…"}' --tags Key=SymEnv,Value=backoffice
resource "sym_secret" "api_key" {
  path      = "sym/${var.environment_name}/credentials"
  source_id = sym_secrets.this.id
  label     = "Back-office admin API key"

  settings = {
    json_key = "admin_api_key"
  }
}

############ The custom strategy ############

# What the strategy works with: `external_id` names your account in the back-office (people's back-office user
# IDs are stored per external_id), and settings pass strategy.ts its configuration. `secret_ids_json` lists
# sym_secret IDs; strategy.ts receives them, in this order, as integration.settings.secrets.
resource "sym_integration" "backoffice" {
  type        = "custom"
  name        = "${var.environment_name}-admin-api"
  label       = "Back-office admin API"
  external_id = var.backoffice_tenant

  settings = {
    api_url         = var.backoffice_api_url
    secret_ids_json = jsonencode([sym_secret.api_key.id])
  }
}

# A `custom` target takes any settings; strategy.ts reads `role` from the chosen target.
resource "sym_target" "role" {
  for_each = var.backoffice_roles

  type  = "custom"
  name  = "${var.environment_name}-${each.key}"
  label = each.value.label

  settings = {
    role = each.value.role
  }
}

# As in Sym's provider, a custom strategy's `implementation` is the path of its source file, which the provider
# reads and uploads (`file("${path.module}/strategy.ts")` works too).
resource "sym_strategy" "backoffice" {
  type           = "custom"
  name           = "${var.environment_name}-admin-api"
  label          = "Back-office roles"
  integration_id = sym_integration.backoffice.id
  targets        = [for key in sort(keys(var.backoffice_roles)) : sym_target.role[key].id]
  implementation = "${path.module}/strategy.ts"
}

############ The environment ############

resource "sym_integration" "slack" {
  type        = "slack"
  name        = "${var.environment_name}-slack"
  label       = "Slack"
  external_id = var.slack_workspace_id
}

# Warnings and errors from running flows go here, including any error strategy.ts throws while granting.
resource "sym_error_logger" "slack" {
  integration_id = sym_integration.slack.id
  destination    = "#sym-errors"
}

# Every audit entry of every run in the environment is POSTed here as JSON. An `http` destination needs no
# integration.
resource "sym_log_destination" "audit" {
  type = "http"

  settings = {
    url = var.audit_log_url
  }
}

resource "sym_environment" "this" {
  name            = var.environment_name
  label           = "Back-office"
  runtime_id      = sym_runtime.this.id
  error_logger_id = sym_error_logger.slack.id

  log_destination_ids = [sym_log_destination.audit.id]

  integrations = {
    slack_id = sym_integration.slack.id
  }
}

############ The flow ############

resource "sym_flow" "backoffice_access" {
  name  = "backoffice-access"
  label = "Back-office Access"

  implementation = file("${path.module}/impl.ts")
  environment_id = sym_environment.this.id

  # Read by impl.ts as event.flow.vars. Values are always strings.
  vars = {
    request_channel = var.request_channel
    backup_channel  = var.backup_channel
  }

  params {
    # The strategy makes this an access flow; requesters pick one of its targets from a dropdown.
    strategy_id  = sym_strategy.backoffice.id
    allow_revoke = true

    prompt_field {
      name     = "reason"
      label    = "Which ticket or customer is this for?"
      type     = "string"
      required = true
    }

    prompt_field {
      name           = "duration"
      label          = "For how long?"
      type           = "duration"
      allowed_values = ["15m", "1h", "8h"]
      required       = true
    }
  }
}
