import { environmentData, integrationData, runtimeData, secretSourceData } from './data-sources.js'
import type { EntityKind, ResourceDef } from './dsl.js'
import { environment } from './resources/environment.js'
import { errorLogger } from './resources/error-logger.js'
import { flow } from './resources/flow.js'
import { flowsFilter } from './resources/flows-filter.js'
import { integration } from './resources/integration.js'
import { logDestination } from './resources/log-destination.js'
import { runtime } from './resources/runtime.js'
import { secret } from './resources/secret.js'
import { secretSource } from './resources/secret-source.js'
import { strategy } from './resources/strategy.js'
import { target } from './resources/target.js'

/** Every resource, keyed by entity kind. */
export const resources = {
  integration,
  target,
  strategy,
  flow,
  environment,
  runtime,
  secret_source: secretSource,
  secret,
  error_logger: errorLogger,
  log_destination: logDestination,
  flows_filter: flowsFilter,
} as const satisfies Record<EntityKind, unknown>

export type Resources = typeof resources
export type ResourceOf<K extends EntityKind> = Resources[K]

export const dataSources = [integrationData, runtimeData, environmentData, secretSourceData] as const

export const resourceList: readonly ResourceDef[] = Object.values(resources)
