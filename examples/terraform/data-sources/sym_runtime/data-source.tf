data "sym_runtime" "main" {
  name = "main"
}

resource "sym_environment" "sandbox" {
  name       = "sandbox"
  runtime_id = data.sym_runtime.main.id
}
