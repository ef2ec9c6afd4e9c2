resource "sym_secrets" "main" {
  type  = "aws_secrets_manager"
  name  = "main-sym-secrets"
  label = "AWS Secrets Manager"

  settings = {
    context_id = sym_integration.runtime_context.id
  }
}

# Self-hosted OpenSym: secrets from the environment of the OpenSym processes. Only variables whose names start
# with OPENSYM_SECRET_ can be read.
resource "sym_secrets" "env" {
  type = "env"
  name = "process-env"
}
