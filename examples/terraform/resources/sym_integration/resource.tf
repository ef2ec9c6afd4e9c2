# A Slack workspace, by its workspace ID.
resource "sym_integration" "slack" {
  type        = "slack"
  name        = "main-slack"
  external_id = "T01ABC23DEF"
}

# An Okta org. Secret settings hold the ID of a sym_secret, never the value.
resource "sym_integration" "okta" {
  type        = "okta"
  name        = "main-okta"
  label       = "Okta"
  external_id = "example.okta.com"

  settings = {
    api_token_secret = sym_secret.okta_api_key.id
  }
}

# An AWS account reached through an IAM role (a permission context).
resource "sym_integration" "runtime_context" {
  type        = "permission_context"
  name        = "main-runtime-context"
  external_id = "123456789012"

  settings = {
    cloud       = "aws"
    region      = "us-east-1"
    role_arn    = "arn:aws:iam::123456789012:role/sym/SymRuntimeMain"
    external_id = "1478F2AD-6091-41E6-B3D2-766CA2F173CB"
    account_id  = "123456789012"
  }
}
