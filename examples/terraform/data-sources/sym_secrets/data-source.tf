data "sym_secrets" "main" {
  type = "aws_secrets_manager"
  name = "main-sym-secrets"
}

resource "sym_secret" "github_token" {
  path      = "sym/main/github-token"
  source_id = data.sym_secrets.main.id
}
