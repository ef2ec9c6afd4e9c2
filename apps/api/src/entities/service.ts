/**
 * Entity CRUD for every kind, one transaction per write. Validation that the schema cannot express, reference
 * checks, duplicate and in-use detection live here; the per-kind row mapping lives in `mappers.ts`.
 */
import { isForeignKeyViolation, isUniqueViolation, type Db, type DbOrTx } from '@opensym/db'
import type { Principal } from '@opensym/domain'
import {
  article,
  collectReferences,
  encodeEntityFields,
  normalizeEntityBody,
  referenceAttributes,
  resources,
  slugOf,
  validateEntityRules,
  type EntityKind,
  type FieldError,
} from '@opensym/provider-schema'
import { checkImplementation } from '@opensym/sandbox/compiler'
import { ApiError, invalid } from '../errors.js'
import { mappers, type KindMapper } from './mappers.js'
import { existingIds, referrersOf, secretSettingsReferrers } from './references.js'

type AnyMapper = KindMapper<EntityKind, never>
type Json = Record<string, unknown>

/**
 * An entity body or view as JSON. Routes validate bodies against the derived schemas and serialize views through
 * them, so the generic code here handles plain JSON; `BodyOf<K>`/`ViewOf<K>` give callers the precise shapes.
 */
export type EntityJson = Json & { id?: string }
export type EntityView = Json & { id: string }

export interface FindQuery {
  readonly slug?: string
  readonly type?: string
}

const REFERENCES = referenceAttributes()

/**
 * Kinds whose `implementation` is flow code (reducers and hooks written with @opensym/sdk): it must compile, or
 * the write is refused with the compiler's message and line. Python (Sym's impl.py) is stored as is; runs of it
 * fail with a message saying it cannot run yet.
 */
const COMPILED_IMPLEMENTATIONS: ReadonlySet<EntityKind> = new Set<EntityKind>(['flow', 'flows_filter'])

/** Rows carry these on top of what the mapper reads. */
interface Timestamps {
  createdAt: Date
  updatedAt: Date
}

export class EntityService {
  constructor(private readonly db: Db) {}

  async create(kind: EntityKind, p: Principal, body: EntityJson): Promise<EntityView> {
    const n = await this.prepare(kind, body)
    return this.write(kind, async (tx) => {
      await this.checkReferences(tx, kind, p.orgId, n)
      const m = mapper(kind)
      const { id } = await m.delegate(tx).create({
        data: { ...m.columns(n as never, slugOf(resources[kind], n)), orgId: p.orgId, createdById: p.userId, updatedById: p.userId },
        select: { id: true },
      })
      await m.links?.(tx, id, n as never)
      return this.loadOne(tx, kind, { orgId: p.orgId, id })
    })
  }

  async get(kind: EntityKind, p: Principal, id: string): Promise<EntityView> {
    return this.loadOne(this.db, kind, { orgId: p.orgId, id })
  }

  async find(kind: EntityKind, p: Principal, q: FindQuery): Promise<EntityView[]> {
    const where: Json = { orgId: p.orgId }
    if (q.slug !== undefined) where.slug = q.slug.toLowerCase()
    if (q.type !== undefined) {
      if (!('type' in resources[kind].attributes)) throw invalid([{ field: 'query.type', message: `${resources[kind].title}s have no type` }])
      where.type = q.type
    }
    return this.load(this.db, kind, where)
  }

  async update(kind: EntityKind, p: Principal, id: string, body: EntityJson): Promise<EntityView> {
    if (body.id !== undefined && body.id !== id) throw invalid([{ field: 'id', message: 'does not match the id in the path' }])
    const n = await this.prepare(kind, body)
    return this.write(kind, async (tx) => {
      await this.checkReferences(tx, kind, p.orgId, n)
      const m = mapper(kind)
      const versioned = kind === 'flow' ? { version: { increment: 1 } } : {}
      const { count } = await m.delegate(tx).updateMany({
        where: { id, orgId: p.orgId },
        data: { ...m.columns(n as never, slugOf(resources[kind], n)), ...versioned, updatedById: p.userId },
      })
      if (count === 0) throw notFound(kind, id)
      await m.links?.(tx, id, n as never)
      return this.loadOne(tx, kind, { orgId: p.orgId, id })
    })
  }

  async remove(kind: EntityKind, p: Principal, id: string): Promise<void> {
    await this.write(kind, async (tx) => {
      const [row] = await this.load(tx, kind, { orgId: p.orgId, id })
      if (!row) throw notFound(kind, id)
      const referrers = [...(await referrersOf(tx, REFERENCES, kind, id)), ...(kind === 'secret' ? await secretSettingsReferrers(tx, p.orgId, id) : [])]
      if (referrers.length) {
        const errors = referrers.map((r) => ({ field: 'id', message: `in use by ${resources[r.kind].title}${r.slug ? ` "${r.slug}"` : ''} (${r.id})` }))
        throw new ApiError('IN_USE', `${describe(kind, row)} cannot be deleted while it is in use: ${errors.map((e) => e.message.replace(/^in use by /, '')).join(', ')}`, errors)
      }
      await mapper(kind).delegate(tx).deleteMany({ where: { id, orgId: p.orgId } })
    })
  }

  /** The id of the org's singleton (flows filter), or a 404. */
  async singletonId(kind: EntityKind, p: Principal): Promise<string> {
    const [row] = await this.load(this.db, kind, { orgId: p.orgId })
    if (!row) throw new ApiError('NOT_FOUND', `this organization has no ${resources[kind].title}`)
    return row.id
  }

  private async prepare(kind: EntityKind, body: EntityJson): Promise<Json> {
    const r = resources[kind]
    const errors: FieldError[] = validateEntityRules(r, body)
    if (errors.length) throw invalid(errors)
    const n = normalizeEntityBody(r, body)
    // A custom strategy's implementation is code for the sandbox too (fetchRemoteIdentity, escalate, deescalate).
    const compiled = COMPILED_IMPLEMENTATIONS.has(kind) || (kind === 'strategy' && n.type === 'custom')
    if (compiled && typeof n.implementation === 'string') {
      const check = await checkImplementation(n.implementation)
      if (!check.ok) throw invalid([{ field: 'implementation', message: `does not compile: ${check.message}` }])
    }
    return n
  }

  private async checkReferences(tx: DbOrTx, kind: EntityKind, orgId: string, n: Json): Promise<void> {
    const refs = collectReferences(resources[kind], n)
    const errors: FieldError[] = []
    const byKind = new Map<EntityKind, typeof refs>()
    for (const ref of refs) byKind.set(ref.kind, [...(byKind.get(ref.kind) ?? []), ref])
    for (const [target, list] of byKind) {
      const found = await existingIds(tx, target, orgId, list.map((r) => r.id))
      for (const ref of list) {
        if (!found.has(ref.id)) errors.push({ field: ref.field, message: `no ${resources[target].title} with id ${ref.id} in this organization` })
      }
    }
    if (errors.length) throw invalid(errors)
  }

  /** Runs a write in one transaction and turns constraint violations into API errors. */
  private async write<T>(kind: EntityKind, fn: (tx: DbOrTx) => Promise<T>): Promise<T> {
    try {
      return await this.db.$transaction(fn)
    } catch (e) {
      if (isUniqueViolation(e)) {
        const r = resources[kind]
        if (r.lookup === 'singleton') {
          throw new ApiError('DUPLICATE', `this organization already has ${article(r.title)}; update it, or import it into Terraform`, [{ field: 'id', message: 'already exists' }])
        }
        throw new ApiError('DUPLICATE', `${article(r.title)} with this ${r.lookup === 'type_slug' ? 'type and ' : ''}slug already exists`, [
          { field: 'slug', message: `is already used by another ${r.title}` },
        ])
      }
      if (isForeignKeyViolation(e)) {
        // A concurrent write removed a referenced entity or added a referrer between our check and our write.
        throw new ApiError('CONFLICT', 'a referenced entity changed while this request ran; retry')
      }
      throw e
    }
  }

  private async load(tx: DbOrTx, kind: EntityKind, where: Json): Promise<EntityView[]> {
    const m = mapper(kind)
    const rows = (await m.delegate(tx).findMany({ where, include: m.include, orderBy: { createdAt: 'asc' } })) as Timestamps[]
    return rows.map((row) => {
      const view = encodeEntityFields(resources[kind], m.view(row as never)) as EntityView
      return { ...view, created_at: row.createdAt.toISOString(), updated_at: row.updatedAt.toISOString() }
    })
  }

  private async loadOne(tx: DbOrTx, kind: EntityKind, where: { orgId: string; id: string }): Promise<EntityView> {
    const [view] = await this.load(tx, kind, where)
    if (!view) throw notFound(kind, where.id)
    return view
  }
}

const mapper = (kind: EntityKind) => mappers[kind] as unknown as AnyMapper

const notFound = (kind: EntityKind, id: string) => new ApiError('NOT_FOUND', `no ${resources[kind].title} with id ${id}`)

function describe(kind: EntityKind, view: EntityView): string {
  const title = resources[kind].title
  return typeof view.slug === 'string' && view.slug ? `${title} "${view.slug}"` : title
}
