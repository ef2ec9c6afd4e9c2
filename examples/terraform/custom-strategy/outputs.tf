output "environment_id" {
  description = "The ID of the environment."
  value       = sym_environment.this.id
}

output "flow_id" {
  description = "The ID of the backoffice-access flow."
  value       = sym_flow.backoffice_access.id
}

output "strategy_id" {
  description = "The ID of the custom strategy."
  value       = sym_strategy.backoffice.id
}

output "slack_command" {
  description = "How to start the flow in Slack."
  value       = "/sym req ${sym_flow.backoffice_access.name} ${sym_environment.this.name}"
}
