output "environment_id" {
  description = "The ID of the environment."
  value       = sym_environment.this.id
}

output "flow_id" {
  description = "The ID of the change-approval flow."
  value       = sym_flow.change_approval.id
}

output "slack_command" {
  description = "How to start the flow in Slack."
  value       = "/sym req ${sym_flow.change_approval.name} ${sym_environment.this.name}"
}
