# Every variable has a default, so `terraform apply` works with only SYM_JWT and SYM_API_URL set. The defaults
# are placeholders: set your own with TF_VAR_<name> or a terraform.tfvars file before real use.

variable "sym_org" {
  description = "The slug of your organization, as created with `npm run -s admin -- org create --slug my-org`."
  type        = string
  default     = "my-org"
}

variable "environment_name" {
  description = "The name of the environment (`/sym req okta-access <environment>`); also the prefix of the other resources' names."
  type        = string
  default     = "corp"
}

variable "slack_workspace_id" {
  description = "The ID of your Slack workspace (starts with `T`)."
  type        = string
  default     = "T0123ABCD"
}

variable "request_channel" {
  description = "Where access requests are posted. The channel must exist in Slack."
  type        = string
  default     = "#sym-requests"
}

variable "aws_account_id" {
  description = "The AWS account that holds the runtime's IAM role and the Secrets Manager secret with the Okta API token."
  type        = string
  default     = "123456789012"
}

variable "aws_region" {
  description = "The AWS region of that secret and of the log stream."
  type        = string
  default     = "us-east-1"
}

variable "runtime_role_external_id" {
  description = "The external ID in the trust policy of the runtime's IAM role (the runtime-connector module generates one)."
  type        = string
  default     = "8c1e4a4e-3f5b-4d5e-9a7c-0b2d6f1e9a34"
}

variable "okta_domain" {
  description = "Your Okta org's domain."
  type        = string
  default     = "example.okta.com"
}

variable "okta_groups" {
  description = "The Okta groups people can request, by target name. `admin_only` groups need an admin's approval."
  type = map(object({
    label      = string
    group_id   = string
    admin_only = optional(bool, false)
  }))
  default = {
    "support-tools" = {
      label    = "Support tools"
      group_id = "00g5mnop6QRSTuvwx7y8"
    }
    "okta-admins" = {
      label      = "Okta administrators"
      group_id   = "00g1abcd2EFGHijkl3m4"
      admin_only = true
    }
  }
}

variable "log_stream_name" {
  description = "The Kinesis Data Firehose delivery stream that receives every audit entry of this environment."
  type        = string
  default     = "SymReportingLogsCorp"
}
