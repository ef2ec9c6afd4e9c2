# Every variable has a default, so `terraform apply` works with only SYM_JWT and SYM_API_URL set. The defaults
# are placeholders: set your own with TF_VAR_<name> or a terraform.tfvars file before real use.

variable "sym_org" {
  description = "The slug of your organization, as created with `npm run -s admin -- org create --slug my-org`."
  type        = string
  default     = "my-org"
}

variable "environment_name" {
  description = "The name of the environment (`/sym req backoffice-access <environment>`); also the prefix of the other resources' names."
  type        = string
  default     = "backoffice"
}

variable "slack_workspace_id" {
  description = "The ID of your Slack workspace (starts with `T`)."
  type        = string
  default     = "T0123ABCD"
}

variable "request_channel" {
  description = "Where access requests are posted first. The channel must exist in Slack."
  type        = string
  default     = "#backoffice-requests"
}

variable "backup_channel" {
  description = "Where a request goes when nobody decided on it in `request_channel` within an hour."
  type        = string
  default     = "#backoffice-admins"
}

variable "aws_account_id" {
  description = "The AWS account of the runtime's IAM role and of the Secrets Manager secret with the API key."
  type        = string
  default     = "123456789012"
}

variable "aws_region" {
  description = "The AWS region of that secret."
  type        = string
  default     = "us-east-1"
}

variable "runtime_role_external_id" {
  description = "The external ID in the trust policy of the runtime's IAM role (the runtime-connector module generates one)."
  type        = string
  default     = "5b7d9f1a-2c4e-4f6a-8b0c-d2e4f6a8b0c2"
}

variable "backoffice_api_url" {
  description = "The base URL of your back-office's admin API, which strategy.ts calls to grant and remove roles."
  type        = string
  default     = "https://backoffice.example.com/api/admin"
}

variable "backoffice_tenant" {
  description = "Your account in the back-office: the custom integration's `external_id`, under which Sym stores people's back-office user IDs."
  type        = string
  default     = "acme-production"
}

variable "backoffice_roles" {
  description = "What people can request, by target name: a role in the back-office (the `role` strategy.ts grants)."
  type = map(object({
    label = string
    role  = string
  }))
  default = {
    "refunds" = {
      label = "Issue refunds"
      role  = "billing:refunds"
    }
    "impersonation" = {
      label = "Impersonate customers"
      role  = "support:impersonate"
    }
  }
}

variable "audit_log_url" {
  description = "An HTTP endpoint that receives every audit entry of this environment as JSON, one POST per entry."
  type        = string
  default     = "https://audit.example.com/sym"
}
