resource "sym_secrets" "main" {
  type  = "aws_secrets_manager"
  name  = "main-sym-secrets"
  label = "AWS Secrets Manager"

  settings = {
    context_id = sym_integration.runtime_context.id
  }
}
