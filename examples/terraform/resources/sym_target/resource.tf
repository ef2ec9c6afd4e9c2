# An AWS SSO permission set, assigned in one account.
resource "sym_target" "prod_admin" {
  type  = "aws_sso_permission_set"
  name  = "prod-admin"
  label = "Prod Admin"

  settings = {
    permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef"
    account_id         = "123456789012"
  }
}

resource "sym_target" "prod_read_only" {
  type  = "aws_sso_permission_set"
  name  = "prod-read-only"
  label = "Prod Read Only"

  settings = {
    permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-fedcba9876543210"
    account_id         = "123456789012"
  }
}

# A dynamic target: `repo_name` comes from the request's prompt field of the same name.
resource "sym_target" "github_repo" {
  type           = "github_repo"
  name           = "github-repo"
  label          = "GitHub repository"
  field_bindings = ["repo_name"]
}
