output "environment_id" {
  description = "The ID of the environment."
  value       = sym_environment.this.id
}

output "flow_id" {
  description = "The ID of the okta-access flow."
  value       = sym_flow.okta_access.id
}

output "target_ids" {
  description = "The IDs of the Okta group targets, by key of `okta_groups`."
  value       = { for key, target in sym_target.okta_group : key => target.id }
}

output "slack_command" {
  description = "How to start the flow in Slack."
  value       = "/sym req ${sym_flow.okta_access.name} ${sym_environment.this.name}"
}
