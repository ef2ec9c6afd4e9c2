/**
 * The audit trail: one log entry per completed event, in the shape Sym streams to log destinations and sends to
 * Lambda/HTTP strategies (reference §7.2, schema version 6). Entries are append-only (a trigger refuses UPDATE and
 * DELETE) and chained per org: each stores the hash of the one before, so altering or removing any entry breaks
 * every hash after it, and `verifyAuditChain` names the first entry that no longer matches.
 */
import { createHash } from 'node:crypto'
import { Prisma, type DbOrTx, type Tx } from '@opensym/db'
import { TEMPLATE_SRN, type EventChannel, type EventStatus } from '@opensym/domain'
import type { RunSnapshot } from './snapshot.js'

export const LOG_SCHEMA_VERSION = 6
/** The `prevHash` of an org's first entry. */
export const GENESIS_HASH = '0'.repeat(64)

export interface LogActor {
  readonly user: string
  readonly name: string
  readonly username: string
  readonly identity: { readonly service: string; readonly external_id: string; readonly email?: string | undefined }
}

/** A §7.2 log entry. */
export interface LogEntry {
  readonly id: string
  readonly type: 'event'
  readonly meta: { readonly schema_version: number }
  readonly state: { readonly status: 'completed' | 'processing'; readonly errors: ReadonlyArray<{ readonly message: string; readonly code: string }> }
  readonly run: { readonly srn: string; readonly flow: string; readonly actors: Readonly<Record<string, LogActor>> }
  readonly event: { readonly srn: string; readonly type: string; readonly template: string; readonly timestamp: string; readonly channel: EventChannel }
  readonly actor: LogActor | null
  readonly fields: Readonly<Record<string, unknown>>
}

export interface EntryUser {
  readonly id: string
  readonly type: 'normal' | 'bot'
  readonly email: string | null
  readonly username: string
  readonly firstName: string | null
  readonly lastName: string | null
}

/** Everything an entry is made of, loaded by {@link loadEntryInput} or assembled by the engine. */
export interface EntryInput {
  readonly orgSlug: string
  readonly run: { readonly id: string; readonly flowSlug: string; readonly flowVersion: number; readonly fields: Readonly<Record<string, unknown>>; readonly durationSeconds: number | null; readonly snapshot: RunSnapshot | null }
  readonly event: {
    readonly id: string
    readonly name: string
    readonly channel: EventChannel
    readonly status: EventStatus
    readonly error: string | null
    readonly fields: Readonly<Record<string, unknown>>
    readonly timestamp: Date
    readonly actor: EntryUser | null
  }
  /** The actor of each earlier step of the run (and of this one), by step name; later steps overwrite earlier. */
  readonly actors: ReadonlyArray<{ readonly step: string; readonly user: EntryUser }>
}

export function userSrn(orgSlug: string, user: Pick<EntryUser, 'id' | 'type'>): string {
  return `${orgSlug}:user:${user.type}:${user.id}:latest`
}

function logActor(orgSlug: string, user: EntryUser): LogActor {
  const name = [user.firstName, user.lastName].filter(Boolean).join(' ') || user.username
  return {
    user: userSrn(orgSlug, user),
    name,
    username: user.username,
    identity: user.email ? { service: 'sym', external_id: 'cloud', email: user.email } : { service: 'sym', external_id: 'cloud' },
  }
}

/**
 * The log entry of an event. The id is the event's id, so every delivery of the entry (and the payload sent to a
 * strategy for the same event) carries the same id. A pending event yields `state.status = "processing"`.
 */
export function buildLogEntry(input: EntryInput): LogEntry {
  const { orgSlug, run, event } = input
  const target = run.snapshot?.target
  const fields: Record<string, unknown> = { ...run.fields, ...event.fields }
  if (target) {
    fields.target_id = target.id
    fields.target = {
      name: target.slug,
      srn: `${orgSlug}:access_target:${target.type}:${target.slug}:latest:${target.id}`,
      type: target.type,
      label: target.label ?? target.slug,
      settings: target.settings,
    }
  }
  if (run.durationSeconds !== null) fields.duration = run.durationSeconds
  const actors: Record<string, LogActor> = {}
  for (const { step, user } of input.actors) actors[step] = logActor(orgSlug, user)
  return {
    id: event.id,
    type: 'event',
    meta: { schema_version: LOG_SCHEMA_VERSION },
    state: {
      status: event.status === 'pending' ? 'processing' : 'completed',
      errors: event.status === 'error' ? [{ message: event.error ?? 'the event failed', code: `${event.name}_failed` }] : [],
    },
    run: {
      srn: `${orgSlug}:run:${run.flowSlug}:${run.flowVersion}:${run.id}`,
      flow: `${orgSlug}:flow:${run.flowSlug}:${run.flowVersion}`,
      actors,
    },
    event: {
      srn: `sym:event-spec:approval:1.0.0:${event.name}`,
      type: event.name,
      template: TEMPLATE_SRN,
      timestamp: event.timestamp.toISOString(),
      channel: event.channel,
    },
    actor: event.actor ? logActor(orgSlug, event.actor) : null,
    fields,
  }
}

/** JSON with object keys sorted at every level: the same value always has the same text, whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
}

/** An entry's hash: SHA-256 over the previous hash and the entry's canonical JSON. */
export function chainHash(prevHash: string, entry: unknown): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(entry)).digest('hex')
}

/** A user as an entry names them, built by PostgreSQL (`json_build_object`) in {@link loadEntryInput}. */
const entryUserJson = (u: string) =>
  `json_build_object('id', ${u}."id", 'type', ${u}."type", 'email', ${u}."email", 'username', ${u}."username", 'firstName', ${u}."firstName", 'lastName', ${u}."lastName")`

/** A row of {@link ENTRY_INPUT_COLUMNS}. */
export interface EntryInputRow {
  readonly id: string
  readonly runId: string
  readonly name: string
  readonly channel: EventChannel
  readonly status: EventStatus
  readonly error: string | null
  readonly fields: unknown
  readonly createdAt: Date
  readonly completedAt: Date | null
  readonly actor: EntryUser | null
  readonly orgId: string
  readonly orgSlug: string
  readonly flowId: string | null
  readonly flowSlug: string
  readonly flowVersion: number
  readonly runFields: unknown
  readonly durationSeconds: number | null
  readonly snapshot: unknown
  readonly actors: ReadonlyArray<{ step: string; user: EntryUser }>
}

/**
 * What {@link buildLogEntry} needs, selected from `e` — the event row, a table or an `UPDATE … RETURNING` — in one
 * round trip: the event with its actor, its run and org, and the actor of each earlier step of the run that did
 * not fail, then this event's own (taken from `e`, so that an event updated by the same statement counts as it is
 * now), in order.
 */
export const ENTRY_INPUT_COLUMNS = `
  e."id", e."runId", e."name", e."channel"::text AS "channel", e."status"::text AS "status", e."error", e."fields",
  e."createdAt", e."completedAt",
  CASE WHEN a."id" IS NULL THEN NULL ELSE ${entryUserJson('a')} END AS "actor",
  r."orgId", o."slug" AS "orgSlug", r."flowId", r."flowSlug", r."flowVersion", r."fields" AS "runFields", r."durationSeconds", r."snapshot",
  COALESCE((SELECT json_agg(x."actor" ORDER BY x."seq") FROM (
    SELECT p."seq", json_build_object('step', p."name", 'user', ${entryUserJson('u')}) AS "actor"
    FROM "RunEvent" p JOIN "User" u ON u."id" = p."actorId"
    WHERE p."runId" = e."runId" AND p."seq" < e."seq" AND p."status" <> 'error'
    UNION ALL
    SELECT e."seq", json_build_object('step', e."name", 'user', ${entryUserJson('a')}) WHERE a."id" IS NOT NULL AND e."status" <> 'error'
  ) x), '[]'::json) AS "actors"`

/** Joins {@link ENTRY_INPUT_COLUMNS} needs after `FROM e`. */
export const ENTRY_INPUT_JOINS = `
  JOIN "Run" r ON r."id" = e."runId"
  JOIN "Organization" o ON o."id" = r."orgId"
  LEFT JOIN "User" a ON a."id" = e."actorId"`

const ENTRY_INPUT_SQL = `SELECT ${ENTRY_INPUT_COLUMNS} FROM "RunEvent" e ${ENTRY_INPUT_JOINS} WHERE e."id" = $1::uuid`

export type LoadedEntryInput = EntryInput & { readonly orgId: string; readonly flowId: string | null }

/** Loads what {@link buildLogEntry} needs for one event: the event, its run and org, and the run's actors so far. */
export async function loadEntryInput(db: DbOrTx, eventId: string): Promise<LoadedEntryInput> {
  const [row] = await db.$queryRawUnsafe<EntryInputRow[]>(ENTRY_INPUT_SQL, eventId)
  if (!row) throw new Error(`loadEntryInput: no event ${eventId}`)
  return entryInputOf(row)
}

/** A row of {@link ENTRY_INPUT_COLUMNS} as {@link buildLogEntry} takes it. */
export function entryInputOf(row: EntryInputRow): LoadedEntryInput {
  return {
    orgId: row.orgId,
    flowId: row.flowId,
    orgSlug: row.orgSlug,
    run: {
      id: row.runId,
      flowSlug: row.flowSlug,
      flowVersion: row.flowVersion,
      fields: asRecord(row.runFields),
      durationSeconds: row.durationSeconds,
      snapshot: (row.snapshot && typeof row.snapshot === 'object' && 'flow' in row.snapshot ? row.snapshot : null) as RunSnapshot | null,
    },
    event: {
      id: row.id,
      name: row.name,
      channel: row.channel,
      status: row.status,
      error: row.error,
      fields: asRecord(row.fields),
      timestamp: row.completedAt ?? row.createdAt,
      actor: row.actor,
    },
    actors: row.actors,
  }
}

function asRecord(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
}

/**
 * Writes the audit entry of a completed event, chained after the org's last entry. Call it inside the transaction
 * that completes the event, as its last statement: it locks the org's chain head until commit. A second call for
 * the same event does nothing, so a retried step never writes two entries.
 *
 * One statement locks the head, appends the entry with the hash of the head's (the same as {@link chainHash}:
 * SHA-256 over `<prevHash>\n<canonical JSON>`, computed by PostgreSQL from the canonical JSON given) and moves the
 * head, so the org's chain is locked for that statement and the commit only. The org's first entry creates the
 * head first.
 */
export async function recordAudit(tx: Tx, eventId: string): Promise<LogEntry | undefined> {
  return appendAudit(tx, await loadEntryInput(tx, eventId))
}

/** {@link recordAudit} with the event's entry input loaded already (as `completeEvent` gets it with its update). */
export async function appendAudit(tx: Tx, input: LoadedEntryInput, alongside?: Prisma.Sql): Promise<LogEntry | undefined> {
  const eventId = input.event.id
  if (input.event.status === 'pending') throw new Error(`recordAudit: event ${eventId} is still pending`)
  const entry = buildLogEntry(input)
  const canonical = canonicalJson(entry)
  // `alongside`: another write of the step (the next event's insert) made by the first attempt's statement, whatever
  // the chain's state, so that it is one round trip less.
  const append = (other?: Prisma.Sql) => tx.$executeRaw`
    WITH ${other ? Prisma.sql`alongside AS (${other}), ` : Prisma.empty}head AS (
      SELECT "seq", "hash" FROM "AuditChainHead" WHERE "orgId" = ${input.orgId}::uuid FOR UPDATE
    ), appended AS (
      INSERT INTO "AuditEntry" ("id", "orgId", "seq", "runId", "eventId", "flowId", "userId", "eventType", "timestamp", "entry", "prevHash", "hash")
      SELECT ${entry.id}::uuid, ${input.orgId}::uuid, head."seq" + 1, ${input.run.id}::uuid, ${eventId}::uuid, ${input.flowId}::uuid,
             ${input.event.actor?.id ?? null}::uuid, ${input.event.name}, ${input.event.timestamp}::timestamptz, ${JSON.stringify(entry)}::jsonb,
             head."hash", encode(sha256(convert_to(head."hash" || E'\n' || ${canonical}::text, 'UTF8')), 'hex')
      FROM head
      WHERE NOT EXISTS (SELECT 1 FROM "AuditEntry" WHERE "eventId" = ${eventId}::uuid)
      RETURNING "seq", "hash"
    )
    UPDATE "AuditChainHead" SET "seq" = appended."seq", "hash" = appended."hash" FROM appended WHERE "AuditChainHead"."orgId" = ${input.orgId}::uuid`
  if ((await append(alongside)) === 1) return entry
  // Nothing appended: the entry exists already (a retried step), or this is the org's first entry.
  const existing = await tx.auditEntry.findUnique({ where: { eventId }, select: { id: true } })
  if (existing) return undefined
  await tx.$executeRaw`INSERT INTO "AuditChainHead" ("orgId", "seq", "hash") VALUES (${input.orgId}::uuid, 0, ${GENESIS_HASH}) ON CONFLICT DO NOTHING`
  if ((await append()) !== 1) throw new Error(`recordAudit: could not append the entry of event ${eventId} to the chain of org ${input.orgId}`)
  return entry
}

/**
 * {@link appendAudit} for many events at once (an expiry batch), completed by this transaction, so that none has an
 * entry yet: each org's head is locked (in org order, as the last statements of the transaction), the hashes computed
 * here as {@link chainHash} defines them, then the entries inserted and the heads moved in one statement.
 */
export async function appendAuditBatch(tx: Tx, inputs: readonly LoadedEntryInput[]): Promise<void> {
  const orgIds = [...new Set(inputs.map((i) => i.orgId))].sort()
  const lockHeads = () => tx.$queryRaw<Array<{ orgId: string; seq: bigint; hash: string }>>`
    SELECT "orgId", "seq", "hash" FROM "AuditChainHead" WHERE "orgId" = ANY(${orgIds}::uuid[]) ORDER BY "orgId" FOR UPDATE`
  let heads = await lockHeads()
  if (heads.length < orgIds.length) {
    // An org's first entries (its runs were escalated before the chain existed): its head starts at genesis.
    await tx.$executeRaw`INSERT INTO "AuditChainHead" ("orgId", "seq", "hash") SELECT unnest(${orgIds}::uuid[]), 0, ${GENESIS_HASH} ON CONFLICT DO NOTHING`
    heads = await lockHeads()
  }
  const chain = new Map(heads.map((h) => [h.orgId, { seq: Number(h.seq), hash: h.hash }]))
  const rows = inputs.map((input) => {
    const head = chain.get(input.orgId)!
    const entry = buildLogEntry(input)
    const hash = chainHash(head.hash, entry)
    const row = {
      id: entry.id,
      orgId: input.orgId,
      seq: head.seq + 1,
      runId: input.run.id,
      eventId: input.event.id,
      flowId: input.flowId,
      userId: input.event.actor?.id ?? null,
      eventType: input.event.name,
      timestamp: input.event.timestamp.toISOString(),
      entry,
      prevHash: head.hash,
      hash,
    }
    chain.set(input.orgId, { seq: row.seq, hash })
    return row
  })
  const moved = Prisma.join(
    [...chain].map(([orgId, h]) => Prisma.sql`(${orgId}::uuid, ${h.seq}::bigint, ${h.hash})`),
    ', ',
  )
  await tx.$executeRaw`
    WITH x AS (SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      AS x("id" uuid, "orgId" uuid, "seq" bigint, "runId" uuid, "eventId" uuid, "flowId" uuid, "userId" uuid, "eventType" text,
           "timestamp" timestamptz, "entry" jsonb, "prevHash" text, "hash" text)),
    ins AS (
      INSERT INTO "AuditEntry" ("id", "orgId", "seq", "runId", "eventId", "flowId", "userId", "eventType", "timestamp", "entry", "prevHash", "hash")
      SELECT "id", "orgId", "seq", "runId", "eventId", "flowId", "userId", "eventType", "timestamp", "entry", "prevHash", "hash" FROM x
      RETURNING 1
    )
    UPDATE "AuditChainHead" h SET "seq" = v."seq", "hash" = v."hash" FROM (VALUES ${moved}) AS v("orgId", "seq", "hash") WHERE h."orgId" = v."orgId"`
}

export interface ChainBreak {
  readonly seq: bigint
  readonly id: string
  readonly reason: string
}

export interface ChainVerification {
  readonly ok: boolean
  readonly entries: number
  readonly firstBreak?: ChainBreak
}

/**
 * Recomputes an org's chain from the first entry and reports the first entry that does not match: changed
 * content, a broken link, a missing position, or a head that disagrees with the last entry.
 */
export async function verifyAuditChain(db: DbOrTx, orgId: string, options: { batchSize?: number } = {}): Promise<ChainVerification> {
  const batchSize = options.batchSize ?? 1000
  let prevHash = GENESIS_HASH
  let expectedSeq = 1n
  let checked = 0
  for (;;) {
    const rows = await db.auditEntry.findMany({
      where: { orgId, seq: { gte: expectedSeq } },
      orderBy: { seq: 'asc' },
      take: batchSize,
      select: { id: true, seq: true, entry: true, prevHash: true, hash: true },
    })
    for (const row of rows) {
      if (row.seq !== expectedSeq) return broken(checked, { seq: expectedSeq, id: row.id, reason: `entry ${expectedSeq} is missing (next is ${row.seq})` })
      if (row.prevHash !== prevHash) return broken(checked, { seq: row.seq, id: row.id, reason: 'its link to the previous entry does not match' })
      if (chainHash(prevHash, row.entry) !== row.hash) return broken(checked, { seq: row.seq, id: row.id, reason: 'its content does not match its hash' })
      prevHash = row.hash
      expectedSeq = row.seq + 1n
      checked++
    }
    if (rows.length < batchSize) break
  }
  const head = await db.auditChainHead.findUnique({ where: { orgId } })
  if (head && (head.seq !== expectedSeq - 1n || head.hash !== prevHash)) {
    return broken(checked, { seq: head.seq, id: '', reason: `the chain head (entry ${head.seq}) does not match the last entry (${expectedSeq - 1n}): entries were removed` })
  }
  return { ok: true, entries: checked }
}

function broken(entries: number, firstBreak: ChainBreak): ChainVerification {
  return { ok: false, entries, firstBreak }
}
