output "environment_id" {
  description = "The ID of the quickstart environment."
  value       = sym_environment.this.id
}

output "flow_ids" {
  description = "The IDs of the quickstart flows, by name."
  value = {
    approval = sym_flow.approval.id
    access   = sym_flow.access.id
  }
}
