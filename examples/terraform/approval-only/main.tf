# An approval-only flow: someone asks for sign-off on a change, an approver says yes or no, and nothing is
# granted anywhere. Useful for change management, purchases, or anything else that needs a recorded decision.

# The token comes from SYM_JWT and the API address from SYM_API_URL (see README.md).
provider "sym" {
  org = var.sym_org
}

############ The environment ############

# The Slack workspace that requests and decisions happen in.
resource "sym_integration" "slack" {
  type        = "slack"
  name        = "${var.environment_name}-slack"
  label       = "Slack"
  external_id = var.slack_workspace_id
}

# Where the flows of this environment run. Approval-only flows touch no cloud account, so the runtime needs no
# permission context (compare ../aws-sso-access, whose runtime assumes an AWS IAM role).
resource "sym_runtime" "this" {
  name  = var.environment_name
  label = "Operations"
}

# Warnings and errors from running flows (a failing reducer, an unknown channel) are posted here.
resource "sym_error_logger" "slack" {
  integration_id = sym_integration.slack.id
  destination    = "#sym-errors"
}

# Every audit entry of every run in the environment (request, approve, deny, ...) is POSTed here as JSON.
# An `http` destination needs no integration.
resource "sym_log_destination" "audit" {
  type = "http"

  settings = {
    url = var.audit_log_url
  }
}

resource "sym_environment" "this" {
  name            = var.environment_name
  label           = "Operations"
  runtime_id      = sym_runtime.this.id
  error_logger_id = sym_error_logger.slack.id

  log_destination_ids = [sym_log_destination.audit.id]

  # `slack_id` is what makes the Slack workspace available to the flows of this environment.
  integrations = {
    slack_id = sym_integration.slack.id
  }
}

############ The flow ############

resource "sym_flow" "change_approval" {
  name  = "change-approval"
  label = "Change Approval"

  implementation = file("${path.module}/impl.ts")
  environment_id = sym_environment.this.id

  # Read by impl.ts as event.flow.vars. Values are always strings.
  vars = {
    request_channel = var.request_channel
    urgent_channel  = var.urgent_channel
  }

  params {
    # No strategy_id: this is what makes the flow approval-only. Approval-only flows have no `duration` field,
    # since nothing is granted that could expire.

    # Approvers may add a note to their decision; it is shown on the request message and reaches hooks as
    # event.payload.fields["decision_message"].
    include_decision_message = true

    # Requests can come from Slack (`/sym req`) and from the Events API (for example from a CI pipeline).
    allowed_sources = ["slack", "api"]

    additional_header_text = "Changes to production need a second pair of eyes. Link the ticket if there is one."

    # Each prompt_field is one input of the Slack request form, in order. Values reach impl.ts as
    # event.payload.fields[name].
    prompt_field {
      name     = "change"
      label    = "What are you changing?"
      type     = "string"
      required = true
    }

    prompt_field {
      name     = "reason"
      label    = "Why?"
      type     = "string"
      required = true
    }

    # `allowed_values` turns the input into a dropdown; impl.ts routes urgent requests differently.
    prompt_field {
      name           = "urgency"
      label          = "Urgency"
      type           = "string"
      required       = false
      default        = "normal"
      allowed_values = ["normal", "urgent"]
    }

    prompt_field {
      name     = "ticket"
      label    = "Ticket URL"
      type     = "string"
      required = false
    }
  }
}
