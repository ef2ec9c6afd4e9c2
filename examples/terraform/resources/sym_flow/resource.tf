resource "sym_flow" "sso_access" {
  name  = "sso-access"
  label = "AWS SSO Access"

  implementation = file("${path.module}/impl.ts")
  environment_id = sym_environment.main.id

  vars = {
    request_channel = "#sym-requests"
  }

  params {
    strategy_id     = sym_strategy.aws_sso.id
    allow_revoke    = true
    allowed_sources = ["slack", "api"]

    prompt_field {
      name     = "reason"
      label    = "Why do you need access?"
      type     = "string"
      required = true
    }

    prompt_field {
      name           = "duration"
      label          = "How long?"
      type           = "duration"
      allowed_values = ["30m", "1h", "1d"]
      required       = true
    }
  }
}
