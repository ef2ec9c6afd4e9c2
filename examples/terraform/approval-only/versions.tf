terraform {
  required_providers {
    # The provider built from apps/provider. `npm run build:provider` installs it under this address, so the
    # source is the same as in Sym's own configurations.
    sym = {
      source = "symopsio/sym"
    }
  }
}
