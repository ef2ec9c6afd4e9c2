variable "sym_org" {
  description = "The slug of your organization, as created with `npm run -s admin -- org create --slug my-org`."
  type        = string
  default     = "my-org"
}

variable "slack_workspace_id" {
  description = "The ID of your Slack workspace (starts with `T`)."
  type        = string
}

variable "environment_name" {
  description = "The name of the environment; also used to name the Slack integration, runtime and strategy."
  type        = string
  default     = "main"
}

variable "access_webhook_url" {
  description = "Where the `http` strategy POSTs each grant and removal of access to `staging-db`, as JSON."
  type        = string
  default     = "http://127.0.0.1:8090/sym/access"
}
