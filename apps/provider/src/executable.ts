/**
 * What the provider's executable runs, in two steps: {@link providerService} wraps a {@link SymProvider} (which
 * builds everything that does not depend on the process: schemas, handlers), {@link run} serves it. `main.ts`
 * does both at every start; the packaged executable does the first while `npm run build:provider` makes its V8
 * startup snapshot (`snapshot.ts`), and only the second at every start.
 */
import { PROVIDER_ADDRESS } from '@opensym/provider-schema'
import { serve, type ProviderService } from '@opensym/tfplugin/transport'
import type { SymProvider } from './plugin.js'

/** The RPC handlers of the tfplugin6 Provider service, on a SymProvider. */
export function providerService(sym: SymProvider): ProviderService {
  // The generated request types carry every field; SymProvider reads the ones it needs.
  return {
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
}

/** Serves until Terraform shuts the provider down; a failure to start ends the process with status 1. */
export function run(provider: ProviderService): void {
  serve({ provider, name: 'sym', address: PROVIDER_ADDRESS }).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  })
}
