data "sym_integration" "slack" {
  type = "slack"
  name = "main-slack"
}

resource "sym_error_logger" "slack" {
  integration_id = data.sym_integration.slack.id
  destination    = "#sym-errors"
}
