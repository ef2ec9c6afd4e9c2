# A plain secret: the whole secret value is the token.
resource "sym_secret" "okta_api_key" {
  path      = "sym/main/okta-api-key"
  source_id = sym_secrets.main.id
  label     = "Okta API key"
}

# One key of a JSON secret.
resource "sym_secret" "pagerduty_api_key" {
  path      = "sym/main/integrations"
  source_id = sym_secrets.main.id

  settings = {
    json_key = "pagerduty_api_key"
  }
}

# From an `env` source: the environment variable OPENSYM_SECRET_ACCESS_WEBHOOK of the OpenSym worker.
resource "sym_secret" "webhook_signing_key" {
  path      = "OPENSYM_SECRET_ACCESS_WEBHOOK"
  source_id = sym_secrets.env.id
}
