# One per organization: decides which flows each user sees in Slack.
resource "sym_flows_filter" "this" {
  implementation = file("${path.module}/flows_filter.ts")

  vars = {
    oncall_only_flows = "prod-access,db-admin"
  }

  integrations = {
    pagerduty_id = sym_integration.pagerduty.id
  }
}
