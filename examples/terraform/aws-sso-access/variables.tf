# Every variable has a default, so `terraform apply` works with only SYM_JWT and SYM_API_URL set. The defaults
# are placeholders: set your own with TF_VAR_<name> or a terraform.tfvars file before real use.

variable "sym_org" {
  description = "The slug of your organization, as created with `npm run -s admin -- org create --slug my-org`."
  type        = string
  default     = "my-org"
}

variable "environment_name" {
  description = "The name of the environment (`/sym req aws-sso-access <environment>`); also the prefix of the other resources' names."
  type        = string
  default     = "cloud"
}

variable "slack_workspace_id" {
  description = "The ID of your Slack workspace (starts with `T`)."
  type        = string
  default     = "T0123ABCD"
}

variable "request_channel" {
  description = "Where requests for non-production permission sets are posted. The channel must exist in Slack."
  type        = string
  default     = "#sym-requests"
}

variable "production_request_channel" {
  description = "Where requests for production permission sets are posted. The channel must exist in Slack."
  type        = string
  default     = "#sym-prod-requests"
}

variable "aws_account_id" {
  description = "The AWS account of the runtime's IAM role (where Sym's resources live)."
  type        = string
  default     = "123456789012"
}

variable "aws_region" {
  description = "The AWS region of the runtime and of the log stream."
  type        = string
  default     = "us-east-1"
}

variable "runtime_role_external_id" {
  description = "The external ID in the trust policy of the runtime's IAM role (the runtime-connector module generates one)."
  type        = string
  default     = "2f0e6a52-7c1d-4b8e-a3f9-5d4c3b2a1e0f"
}

variable "sso_account_id" {
  description = "The AWS account of your IAM Identity Center (AWS SSO) instance, usually the organization's management account."
  type        = string
  default     = "999999999999"
}

variable "sso_region" {
  description = "The AWS region of your IAM Identity Center instance."
  type        = string
  default     = "us-east-1"
}

variable "sso_instance_arn" {
  description = "The ARN of your IAM Identity Center instance (`aws sso-admin list-instances`)."
  type        = string
  default     = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
}

variable "permission_sets" {
  description = <<-EOT
    What people can request, by target name: a permission set assigned in one account. Permission set ARNs come
    from `aws sso-admin list-permission-sets`. `production` ones need an admin's approval and are posted to
    `production_request_channel`.
  EOT
  type = map(object({
    label              = string
    permission_set_arn = string
    account_id         = string
    production         = optional(bool, false)
  }))
  default = {
    "staging-power-user" = {
      label              = "Staging: PowerUser"
      permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1a2b3c4d5e6f7a8b"
      account_id         = "222222222222"
    }
    "prod-read-only" = {
      label              = "Production: ReadOnly"
      permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-9f8e7d6c5b4a3f2e"
      account_id         = "111111111111"
      production         = true
    }
    "prod-admin" = {
      label              = "Production: Admin"
      permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0a1b2c3d4e5f6a7b"
      account_id         = "111111111111"
      production         = true
    }
  }
}

variable "log_stream_name" {
  description = "The Kinesis Data Firehose delivery stream that receives every audit entry of this environment."
  type        = string
  default     = "SymReportingLogsCloud"
}
