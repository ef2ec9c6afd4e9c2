output "environment_id" {
  description = "The ID of the environment."
  value       = sym_environment.this.id
}

output "flow_id" {
  description = "The ID of the aws-sso-access flow."
  value       = sym_flow.aws_sso_access.id
}

output "target_ids" {
  description = "The IDs of the permission set targets, by key of `permission_sets`."
  value       = { for key, target in sym_target.permission_set : key => target.id }
}

output "slack_command" {
  description = "How to start the flow in Slack."
  value       = "/sym req ${sym_flow.aws_sso_access.name} ${sym_environment.this.name}"
}
