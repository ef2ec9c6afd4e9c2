/** The sym provider's executable: Terraform starts it; it serves plugin protocol v6 until Terraform shuts it down. */
import { providerService, run } from './executable.js'
import { SymProvider } from './plugin.js'

// No top-level await: the packaged executable runs this as CommonJS (Node's single executable applications).
run(providerService(new SymProvider({ env: process.env })))
