resource "sym_environment" "main" {
  name  = "main"
  label = "Main"

  runtime_id          = sym_runtime.main.id
  error_logger_id     = sym_error_logger.slack.id
  log_destination_ids = [sym_log_destination.audit.id]

  integrations = {
    slack_id     = sym_integration.slack.id
    okta_id      = sym_integration.okta.id
    pagerduty_id = sym_integration.pagerduty.id
  }
}
