/**
 * How each entity kind's API body maps to its PostgreSQL rows and back. Bodies arrive validated and normalised
 * (see `normalizeEntityBody`: unset markers removed, slugs lower-cased, base64 decoded); views leave here in the
 * API's field names and are base64-encoded again by the service.
 */
import type { Prisma, DbOrTx } from '@opensym/db'
import type { BodyOf, EntityKind, ViewOf } from '@opensym/provider-schema'

type Settings = Record<string, string>

/** The few delegate operations the service needs, shared by every model. */
export interface Delegate {
  create(args: { data: object; select: { id: true } }): Promise<{ id: string }>
  updateMany(args: { where: object; data: object }): Promise<{ count: number }>
  findMany(args: { where: object; include?: object; orderBy?: object }): Promise<unknown[]>
  deleteMany(args: { where: object }): Promise<{ count: number }>
}

/** A view without the timestamps the service adds. */
type PartialView<K extends EntityKind> = Omit<ViewOf<K>, 'created_at' | 'updated_at'>

export interface KindMapper<K extends EntityKind, Row> {
  delegate(tx: DbOrTx): Delegate
  /** Relations to load for a view. */
  include?: object
  /** The entity's own columns (org, audit and id are added by the service). */
  columns(n: BodyOf<K>, slug: string): Record<string, unknown>
  /** Replaces the rows of join tables (ordered id lists, integration maps). */
  links?(tx: DbOrTx, id: string, n: BodyOf<K>): Promise<void>
  view(row: Row): PartialView<K>
}

const settings = (v: Prisma.JsonValue): Settings => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Settings) : {})
const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v)
const label = (v: string | undefined) => v ?? null
/** Non-empty lists only: the real provider omits empty lists (`omitempty`), so [] and absent read back alike. */
const nonEmpty = (v: string[]) => (v.length ? v : undefined)
const byPosition = (a: { position: number }, b: { position: number }) => a.position - b.position

type Row<T> = T & { id: string }

export const mappers = {
  integration: {
    delegate: (tx) => tx.integration as unknown as Delegate,
    columns: (n) => ({ type: n.type, slug: n.slug, label: label(n.label), externalId: n.external_id, settings: n.settings ?? {} }),
    view: (r: Row<Prisma.IntegrationModel>) => ({
      id: r.id,
      type: r.type,
      slug: r.slug,
      label: opt(r.label),
      external_id: r.externalId,
      settings: settings(r.settings),
    }),
  } satisfies KindMapper<'integration', Prisma.IntegrationModel>,

  target: {
    delegate: (tx) => tx.target as unknown as Delegate,
    columns: (n) => ({
      type: n.type,
      slug: n.slug,
      label: label(n.label),
      settings: n.settings ?? {},
      fieldBindings: n.field_bindings ?? [],
    }),
    view: (r: Prisma.TargetModel) => ({
      id: r.id,
      type: r.type,
      slug: r.slug,
      label: opt(r.label),
      settings: settings(r.settings),
      field_bindings: nonEmpty(r.fieldBindings),
    }),
  } satisfies KindMapper<'target', Prisma.TargetModel>,

  strategy: {
    delegate: (tx) => tx.strategy as unknown as Delegate,
    include: { targets: true },
    columns: (n) => ({
      type: n.type,
      slug: n.slug,
      label: label(n.label),
      integrationId: n.integration_id ?? null,
      settings: n.settings ?? {},
      implementation: n.implementation ?? null,
    }),
    async links(tx, id, n) {
      await tx.strategyTarget.deleteMany({ where: { strategyId: id } })
      await tx.strategyTarget.createMany({ data: n.targets.map((targetId, position) => ({ strategyId: id, targetId, position })) })
    },
    view: (r: Prisma.StrategyGetPayload<{ include: { targets: true } }>) => ({
      id: r.id,
      type: r.type,
      slug: r.slug,
      label: opt(r.label),
      integration_id: opt(r.integrationId),
      targets: [...r.targets].sort(byPosition).map((t) => t.targetId),
      settings: settings(r.settings),
      implementation: opt(r.implementation),
    }),
  } satisfies KindMapper<'strategy', Prisma.StrategyGetPayload<{ include: { targets: true } }>>,

  flow: {
    delegate: (tx) => tx.flow as unknown as Delegate,
    columns: (n) => {
      const { strategy_id, ...params } = n.params ?? {}
      return {
        slug: n.slug,
        label: label(n.label),
        implementation: n.implementation,
        environmentId: n.environment_id,
        strategyId: strategy_id ?? null,
        vars: n.vars ?? {},
        params: params,
      }
    },
    view: (r: Prisma.FlowModel) => {
      const params = settingsObject(r.params)
      return {
        id: r.id,
        slug: r.slug,
        label: opt(r.label),
        implementation: r.implementation,
        environment_id: r.environmentId,
        vars: settings(r.vars),
        params: r.strategyId ? { strategy_id: r.strategyId, ...params } : params,
      }
    },
  } satisfies KindMapper<'flow', Prisma.FlowModel>,

  environment: {
    delegate: (tx) => tx.environment as unknown as Delegate,
    include: { integrations: true, logDestinations: true },
    columns: (n) => ({
      slug: n.slug,
      label: label(n.label),
      runtimeId: n.runtime_id ?? null,
      errorLoggerId: n.error_logger_id ?? null,
    }),
    async links(tx, id, n) {
      await tx.environmentIntegration.deleteMany({ where: { environmentId: id } })
      await tx.environmentIntegration.createMany({
        data: Object.entries(n.integrations ?? {}).map(([key, integrationId]) => ({ environmentId: id, key, integrationId })),
      })
      // A missing log_destination_ids means none: the real provider omits an empty list, so that is how it clears it.
      await tx.environmentLogDestination.deleteMany({ where: { environmentId: id } })
      await tx.environmentLogDestination.createMany({
        data: [...new Set(n.log_destination_ids ?? [])].map((logDestinationId, position) => ({ environmentId: id, logDestinationId, position })),
      })
    },
    view: (r: Prisma.EnvironmentGetPayload<{ include: { integrations: true; logDestinations: true } }>) => ({
      id: r.id,
      slug: r.slug,
      label: opt(r.label),
      runtime_id: opt(r.runtimeId),
      error_logger_id: opt(r.errorLoggerId),
      integrations: Object.fromEntries([...r.integrations].sort((a, b) => a.key.localeCompare(b.key)).map((i) => [i.key, i.integrationId])),
      log_destination_ids: nonEmpty([...r.logDestinations].sort(byPosition).map((l) => l.logDestinationId)),
    }),
  } satisfies KindMapper<'environment', Prisma.EnvironmentGetPayload<{ include: { integrations: true; logDestinations: true } }>>,

  runtime: {
    delegate: (tx) => tx.runtime as unknown as Delegate,
    columns: (n) => ({ slug: n.slug, label: label(n.label), contextId: n.context_id ?? null }),
    view: (r: Prisma.RuntimeModel) => ({ id: r.id, slug: r.slug, label: opt(r.label), context_id: opt(r.contextId) }),
  } satisfies KindMapper<'runtime', Prisma.RuntimeModel>,

  secret_source: {
    delegate: (tx) => tx.secretSource as unknown as Delegate,
    columns: (n) => ({ type: n.type, slug: n.slug, label: label(n.label), settings: n.settings ?? {} }),
    view: (r: Prisma.SecretSourceModel) => ({ id: r.id, type: r.type, slug: r.slug, label: opt(r.label), settings: settings(r.settings) }),
  } satisfies KindMapper<'secret_source', Prisma.SecretSourceModel>,

  secret: {
    delegate: (tx) => tx.secret as unknown as Delegate,
    columns: (n, slug) => ({ slug, path: n.path, sourceId: n.source_id, label: label(n.label), settings: n.settings ?? {} }),
    view: (r: Prisma.SecretModel) => ({
      id: r.id,
      slug: r.slug,
      path: r.path,
      source_id: r.sourceId,
      label: opt(r.label),
      settings: settings(r.settings),
    }),
  } satisfies KindMapper<'secret', Prisma.SecretModel>,

  error_logger: {
    delegate: (tx) => tx.errorLogger as unknown as Delegate,
    columns: (n, slug) => ({ slug, integrationId: n.integration_id, destination: n.destination }),
    view: (r: Prisma.ErrorLoggerModel) => ({ id: r.id, slug: r.slug, integration_id: r.integrationId, destination: r.destination }),
  } satisfies KindMapper<'error_logger', Prisma.ErrorLoggerModel>,

  log_destination: {
    delegate: (tx) => tx.logDestination as unknown as Delegate,
    columns: (n, slug) => ({ type: n.type, slug, integrationId: n.integration_id ?? null, settings: n.settings ?? {} }),
    view: (r: Prisma.LogDestinationModel) => ({
      id: r.id,
      slug: r.slug,
      type: r.type,
      integration_id: opt(r.integrationId),
      settings: settings(r.settings),
    }),
  } satisfies KindMapper<'log_destination', Prisma.LogDestinationModel>,

  flows_filter: {
    delegate: (tx) => tx.flowsFilter as unknown as Delegate,
    include: { integrations: true },
    columns: (n) => ({ implementation: n.implementation, vars: n.vars ?? {} }),
    async links(tx, id, n) {
      await tx.flowsFilterIntegration.deleteMany({ where: { flowsFilterId: id } })
      await tx.flowsFilterIntegration.createMany({
        data: Object.entries(n.integrations ?? {}).map(([key, integrationId]) => ({ flowsFilterId: id, key, integrationId })),
      })
    },
    view: (r: Prisma.FlowsFilterGetPayload<{ include: { integrations: true } }>) => ({
      id: r.id,
      implementation: r.implementation,
      vars: settings(r.vars),
      integrations: Object.fromEntries([...r.integrations].sort((a, b) => a.key.localeCompare(b.key)).map((i) => [i.key, i.integrationId])),
    }),
  } satisfies KindMapper<'flows_filter', Prisma.FlowsFilterGetPayload<{ include: { integrations: true } }>>,
}

function settingsObject(v: Prisma.JsonValue): Record<string, never> {
  return (v && typeof v === 'object' && !Array.isArray(v) ? v : {}) as Record<string, never>
}

export type Mappers = typeof mappers
