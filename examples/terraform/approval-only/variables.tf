# Every variable has a default, so `terraform apply` works with only SYM_JWT and SYM_API_URL set. The defaults
# are placeholders: set your own with TF_VAR_<name> or a terraform.tfvars file before real use.

variable "sym_org" {
  description = "The slug of your organization, as created with `npm run -s admin -- org create --slug my-org`."
  type        = string
  default     = "my-org"
}

variable "environment_name" {
  description = "The name of the environment (`/sym req change-approval <environment>`); also the prefix of the Slack integration's name."
  type        = string
  default     = "ops"
}

variable "slack_workspace_id" {
  description = "The ID of your Slack workspace (starts with `T`)."
  type        = string
  default     = "T0123ABCD"
}

variable "request_channel" {
  description = "Where change requests are posted. The channel must exist in Slack."
  type        = string
  default     = "#change-approvals"
}

variable "urgent_channel" {
  description = "Where urgent change requests are posted first, before they fall back to `request_channel`."
  type        = string
  default     = "#ops-oncall"
}

variable "audit_log_url" {
  description = "An HTTP endpoint that receives every audit entry of this environment as JSON, one POST per entry."
  type        = string
  default     = "https://audit.example.com/sym"
}
