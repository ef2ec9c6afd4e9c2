# Okta: add the user to an Okta group on approval, remove them when access ends.
resource "sym_target" "okta_admins" {
  type  = "okta_group"
  name  = "okta-admins"
  label = "Okta Admins"

  settings = {
    group_id = "00g1abcd2EFGHijkl3m4"
  }
}

resource "sym_strategy" "okta" {
  type           = "okta"
  name           = "main-okta"
  label          = "Okta groups"
  integration_id = sym_integration.okta.id
  targets        = [sym_target.okta_admins.id]
}

# AWS SSO: the strategy's settings name the Identity Center instance.
resource "sym_strategy" "aws_sso" {
  type           = "aws_sso"
  name           = "main-aws-sso"
  integration_id = sym_integration.sso_context.id
  targets        = [sym_target.prod_admin.id, sym_target.prod_read_only.id]

  settings = {
    instance_arn = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
  }
}

# HTTP: no integration; each grant and removal is POSTed as JSON to your endpoint, signed with a secret.
resource "sym_target" "staging_db" {
  type = "custom"
  name = "staging-db"

  settings = {
    identifier = "staging-db"
  }
}

resource "sym_strategy" "webhook" {
  type    = "http"
  name    = "access-webhook"
  targets = [sym_target.staging_db.id]

  settings = {
    url             = "https://access.example.com/sym"
    hmac_secret_id  = sym_secret.webhook_signing_key.id
    timeout_seconds = "10"
  }
}
