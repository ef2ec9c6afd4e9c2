resource "sym_runtime" "main" {
  name       = "main"
  label      = "Main runtime"
  context_id = sym_integration.runtime_context.id
}
