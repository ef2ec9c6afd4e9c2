/** The sym provider's executable: Terraform starts it; it serves plugin protocol v6 until Terraform shuts it down. */
import { PROVIDER_ADDRESS } from '@opensym/provider-schema'
import { serve, type ProviderService } from '@opensym/tfplugin/transport'
import { SymProvider } from './plugin.js'

const sym = new SymProvider({ env: process.env })

// The generated request types carry every field; SymProvider reads the ones it needs.
const provider: ProviderService = {
  GetProviderSchema: () => sym.getProviderSchema(),
  ValidateProviderConfig: (req) => sym.validateProviderConfig(req),
  ValidateResourceConfig: (req) => sym.validateResourceConfig(req),
  ValidateDataResourceConfig: (req) => sym.validateDataResourceConfig(req),
  ConfigureProvider: (req) => sym.configureProvider(req),
  UpgradeResourceState: (req) => sym.upgradeResourceState(req),
  ReadResource: (req) => sym.readResource(req),
  PlanResourceChange: (req) => sym.planResourceChange(req),
  ApplyResourceChange: (req) => sym.applyResourceChange(req),
  ImportResourceState: (req) => sym.importResourceState(req),
  ReadDataSource: (req) => sym.readDataSource(req),
  StopProvider: () => ({}),
}

// No top-level await: the packaged executable runs this as CommonJS (Node's single executable applications).
serve({ provider, name: 'sym', address: PROVIDER_ADDRESS }).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(1)
})
