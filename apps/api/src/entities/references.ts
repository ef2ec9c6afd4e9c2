/**
 * Where PostgreSQL keeps each reference that `provider-schema` declares, so the API can check that referenced
 * entities exist in the caller's org and name the referrers of an entity that is still in use. A test checks
 * this table against `referenceAttributes()`, so a new reference cannot be forgotten here.
 */
import type { DbOrTx } from '@opensym/db'
import type { EntityKind } from '@opensym/provider-schema'

/** The table of each kind (identifiers only from these constants, never from input). */
export const TABLES: Record<EntityKind, string> = {
  integration: 'Integration',
  target: 'Target',
  strategy: 'Strategy',
  flow: 'Flow',
  environment: 'Environment',
  runtime: 'Runtime',
  secret_source: 'SecretSource',
  secret: 'Secret',
  error_logger: 'ErrorLogger',
  log_destination: 'LogDestination',
  flows_filter: 'FlowsFilter',
}

type Storage =
  /** A foreign-key column on the referring entity's own row. */
  | { readonly column: string }
  /** A join table: `column` holds the referenced id, `owner` the referring entity's id. */
  | { readonly join: string; readonly column: string; readonly owner: string }

/** Keyed `<referring kind>.<API field path>`. */
export const REFERENCE_STORAGE: Record<string, Storage> = {
  'strategy.integration_id': { column: 'integrationId' },
  'strategy.targets': { join: 'StrategyTarget', column: 'targetId', owner: 'strategyId' },
  'flow.environment_id': { column: 'environmentId' },
  'flow.params.strategy_id': { column: 'strategyId' },
  'environment.runtime_id': { column: 'runtimeId' },
  'environment.integrations': { join: 'EnvironmentIntegration', column: 'integrationId', owner: 'environmentId' },
  'environment.error_logger_id': { column: 'errorLoggerId' },
  'environment.log_destination_ids': { join: 'EnvironmentLogDestination', column: 'logDestinationId', owner: 'environmentId' },
  'runtime.context_id': { column: 'contextId' },
  'secret.source_id': { column: 'sourceId' },
  'error_logger.integration_id': { column: 'integrationId' },
  'log_destination.integration_id': { column: 'integrationId' },
  'flows_filter.integrations': { join: 'FlowsFilterIntegration', column: 'integrationId', owner: 'flowsFilterId' },
}

export interface Referrer {
  readonly kind: EntityKind
  readonly id: string
  readonly slug: string | null
}

/** The ids among `ids` that exist as `kind` in the org. */
export async function existingIds(tx: DbOrTx, kind: EntityKind, orgId: string, ids: readonly string[]): Promise<Set<string>> {
  const rows = await tx.$queryRawUnsafe<{ id: string }[]>(
    `SELECT id::text AS id FROM "${TABLES[kind]}" WHERE "orgId" = $1::uuid AND id = ANY($2::uuid[])`,
    orgId,
    [...ids],
  )
  return new Set(rows.map((r) => r.id))
}

/** Entities that still point at `id`, at most a few per referring attribute. */
export async function referrersOf(
  tx: DbOrTx,
  references: readonly { kind: EntityKind; path: string; references: EntityKind }[],
  kind: EntityKind,
  id: string,
): Promise<Referrer[]> {
  const found: Referrer[] = []
  for (const ref of references) {
    if (ref.references !== kind) continue
    const storage = REFERENCE_STORAGE[`${ref.kind}.${ref.path}`]
    if (!storage) throw new Error(`no storage declared for reference ${ref.kind}.${ref.path}`)
    const table = TABLES[ref.kind]
    const slug = ref.kind === 'flows_filter' ? 'NULL::text' : 'o.slug'
    const sql =
      'join' in storage
        ? `SELECT DISTINCT o.id::text AS id, ${slug} AS slug FROM "${storage.join}" j JOIN "${table}" o ON o.id = j."${storage.owner}" WHERE j."${storage.column}" = $1::uuid LIMIT 5`
        : `SELECT o.id::text AS id, ${slug} AS slug FROM "${table}" o WHERE o."${storage.column}" = $1::uuid LIMIT 5`
    const rows = await tx.$queryRawUnsafe<{ id: string; slug: string | null }[]>(sql, id)
    for (const r of rows) if (!found.some((f) => f.kind === ref.kind && f.id === r.id)) found.push({ kind: ref.kind, id: r.id, slug: r.slug })
  }
  return found
}

/**
 * The kinds whose `settings` can name a `sym_secret`: type-specific keys (`api_token_secret`, `hmac_secret_id`,
 * `client_secret`, the JSON list `secret_ids_json`…) that the schema leaves as strings, so they are not declared
 * references. A secret's id in one of these maps is a use of it.
 */
const SECRET_SETTINGS_KINDS = ['integration', 'target', 'strategy', 'log_destination'] as const satisfies readonly EntityKind[]

/** Entities of the org whose settings hold the secret's id, at most a few per kind. */
export async function secretSettingsReferrers(tx: DbOrTx, orgId: string, secretId: string): Promise<Referrer[]> {
  const found: Referrer[] = []
  for (const kind of SECRET_SETTINGS_KINDS) {
    // Ids are compared as text: a settings value may hold it in any case, or inside a JSON list.
    const rows = await tx.$queryRawUnsafe<{ id: string; slug: string }[]>(
      `SELECT o.id::text AS id, o.slug FROM "${TABLES[kind]}" o WHERE o."orgId" = $1::uuid AND strpos(lower(o.settings::text), lower($2)) > 0 LIMIT 5`,
      orgId,
      secretId,
    )
    for (const r of rows) found.push({ kind, id: r.id, slug: r.slug })
  }
  return found
}
