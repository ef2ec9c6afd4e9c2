data "sym_environment" "main" {
  name = "main"
}

resource "sym_flow" "approval" {
  name           = "approval"
  implementation = file("${path.module}/impl.ts")
  environment_id = data.sym_environment.main.id
}

output "main_slack_integration_id" {
  value = data.sym_environment.main.integrations["slack_id"]
}
