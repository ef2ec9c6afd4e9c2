/**
 * The audit trail: one log entry per completed event, in the shape Sym streams to log destinations and sends to
 * Lambda/HTTP strategies (reference §7.2, schema version 6). Entries are append-only (a trigger refuses UPDATE and
 * DELETE) and chained per org: each stores the hash of the one before, so altering or removing any entry breaks
 * every hash after it, and `verifyAuditChain` names the first entry that no longer matches.
 *
 * An entry is staged by the transaction that completes its event and chained right after it commits, in batches
 * ({@link AuditChainer}): chaining inside that transaction held the org's chain head from the append until the commit
 * was flushed to disk, so every audited transaction of an org ran one after another.
 */
import { createHash } from 'node:crypto'
import { Prisma, type DbOrTx, type Sql, type SqlPool } from '@opensym/db'
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
  e."createdAt", e."completedAt", r."orgId", ${extraColumns()}`

/**
 * The columns of {@link ENTRY_INPUT_COLUMNS} that are not the event's own (none is named like a `RunEvent` column),
 * for a read that selects the event's columns already.
 */
export const ENTRY_INPUT_EXTRA_COLUMNS = extraColumns()

function extraColumns(): string {
  return `
  CASE WHEN a."id" IS NULL THEN NULL ELSE ${entryUserJson('a')} END AS "actor",
  o."slug" AS "orgSlug", r."flowId", r."flowSlug", r."flowVersion", r."fields" AS "runFields", r."durationSeconds", r."snapshot",
  COALESCE((SELECT json_agg(x."actor" ORDER BY x."seq") FROM (
    SELECT p."seq", json_build_object('step', p."name", 'user', ${entryUserJson('u')}) AS "actor"
    FROM "RunEvent" p JOIN "User" u ON u."id" = p."actorId"
    WHERE p."runId" = e."runId" AND p."seq" < e."seq" AND p."status" <> 'error'
    UNION ALL
    SELECT e."seq", json_build_object('step', e."name", 'user', ${entryUserJson('a')}) WHERE a."id" IS NOT NULL AND e."status" <> 'error'
  ) x), '[]'::json) AS "actors"`
}

/** Joins {@link ENTRY_INPUT_COLUMNS} needs after `FROM e`. */
export const ENTRY_INPUT_JOINS = `
  JOIN "Run" r ON r."id" = e."runId"
  JOIN "Organization" o ON o."id" = r."orgId"
  LEFT JOIN "User" a ON a."id" = e."actorId"`

const ENTRY_INPUT_SQL = `SELECT ${ENTRY_INPUT_COLUMNS} FROM "RunEvent" e ${ENTRY_INPUT_JOINS} WHERE e."id" = $1::uuid`

export type LoadedEntryInput = EntryInput & { readonly orgId: string; readonly flowId: string | null }

/** Loads what {@link buildLogEntry} needs for one event: the event, its run and org, and the run's actors so far. */
export async function loadEntryInput(db: Sql, eventId: string): Promise<LoadedEntryInput> {
  const [row] = await db.query<EntryInputRow>({ text: ENTRY_INPUT_SQL, values: [eventId] })
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

export function asRecord(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
}

/**
 * Writes the audit entry of a completed event: staged by the transaction that completes the event (no lock: nothing
 * waits on the org's chain), then chained by {@link chainAudit} once committed. A second call for the same event does
 * nothing, so a retried step never writes two entries. Returns the entry when it was staged.
 */
export async function recordAudit(tx: Sql, eventId: string): Promise<LogEntry | undefined> {
  return appendAudit(tx, await loadEntryInput(tx, eventId))
}

/**
 * {@link recordAudit} with the event's entry input loaded already (as `completeEvent` gets it with its update).
 * `alongside`: another write of the step (the next event's insert), made by the same statement: one round trip less.
 */
export async function appendAudit(tx: Sql, input: LoadedEntryInput, alongside?: Prisma.Sql): Promise<LogEntry | undefined> {
  const entry = buildLogEntry(input)
  const [row] = await tx.query<{ staged: number }>(Prisma.sql`
    WITH ${alongside ? Prisma.sql`alongside AS (${alongside}), ` : Prisma.empty}staged AS (${stageAuditSql(input, entry)})
    SELECT count(*)::int AS "staged" FROM staged`)
  return row?.staged === 1 ? entry : undefined
}

/**
 * The insert that stages the entry `entry` of the completed event of `input` (nothing if it is staged or chained
 * already), returning 1 when it staged it; `and` adds a condition (e.g. that the statement completed the event).
 */
export function stageAuditSql(input: LoadedEntryInput, entry: LogEntry, and: Prisma.Sql = Prisma.empty): Prisma.Sql {
  const eventId = input.event.id
  if (input.event.status === 'pending') throw new Error(`recordAudit: event ${eventId} is still pending`)
  return Prisma.sql`
    INSERT INTO "AuditStaged" ("id", "orgId", "runId", "eventId", "flowId", "userId", "eventType", "timestamp", "entry")
    SELECT ${entry.id}::uuid, ${input.orgId}::uuid, ${input.run.id}::uuid, ${eventId}::uuid, ${input.flowId}::uuid,
           ${input.event.actor?.id ?? null}::uuid, ${input.event.name}, ${input.event.timestamp}::timestamptz, ${JSON.stringify(entry)}::jsonb
    WHERE NOT EXISTS (SELECT 1 FROM "AuditEntry" WHERE "eventId" = ${eventId}::uuid) ${and}
    ON CONFLICT ("eventId") DO NOTHING
    RETURNING 1`
}

/**
 * The entry input of a pending event (read with {@link ENTRY_INPUT_COLUMNS} while it was pending) as it will be once
 * the event completes with `outcome`: what {@link ENTRY_INPUT_COLUMNS} would read right after, so that the entry can
 * be staged by the statement that completes the event. Earlier events are complete (steps run in order), so only
 * the event itself changes: its status, error, fields (`addFields` merged over them, as jsonb `||` does) and time,
 * and its actor leaves the run's actors when it fails.
 */
export function completedEntryInput(
  pending: LoadedEntryInput,
  outcome: { readonly status: 'success' | 'error'; readonly error?: string | null; readonly completedAt: Date; readonly addFields?: Readonly<Record<string, unknown>> },
): LoadedEntryInput {
  const { event } = pending
  if (event.status !== 'pending') throw new Error(`completedEntryInput: event ${event.id} is not pending`)
  // A pending event with an actor is the last of the actors (ordered by seq).
  const ownLast = event.actor !== null && pending.actors.at(-1)?.step === event.name && pending.actors.at(-1)?.user.id === event.actor.id
  if (event.actor !== null && !ownLast) throw new Error(`completedEntryInput: event ${event.id} is not the last of its run's actors`)
  return {
    ...pending,
    event: {
      ...event,
      status: outcome.status,
      error: outcome.error ?? null,
      fields: outcome.addFields && Object.keys(outcome.addFields).length ? { ...event.fields, ...outcome.addFields } : event.fields,
      timestamp: outcome.completedAt,
    },
    actors: outcome.status === 'error' && ownLast ? pending.actors.slice(0, -1) : pending.actors,
  }
}

/** {@link appendAudit} for many events at once (an expiry batch), completed by this transaction: one statement. */
export async function appendAuditBatch(tx: Sql, inputs: readonly LoadedEntryInput[]): Promise<void> {
  if (inputs.length === 0) return
  const rows = inputs.map((input) => {
    const entry = buildLogEntry(input)
    return {
      id: entry.id,
      orgId: input.orgId,
      runId: input.run.id,
      eventId: input.event.id,
      flowId: input.flowId,
      userId: input.event.actor?.id ?? null,
      eventType: input.event.name,
      timestamp: input.event.timestamp.toISOString(),
      entry,
    }
  })
  await tx.execute(Prisma.sql`
    INSERT INTO "AuditStaged" ("id", "orgId", "runId", "eventId", "flowId", "userId", "eventType", "timestamp", "entry")
    SELECT x."id", x."orgId", x."runId", x."eventId", x."flowId", x."userId", x."eventType", x."timestamp", x."entry"
    FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      AS x("id" uuid, "orgId" uuid, "runId" uuid, "eventId" uuid, "flowId" uuid, "userId" uuid, "eventType" text, "timestamp" timestamptz, "entry" jsonb)
    WHERE NOT EXISTS (SELECT 1 FROM "AuditEntry" a WHERE a."eventId" = x."eventId")
    ORDER BY x."timestamp"
    ON CONFLICT ("eventId") DO NOTHING`)
}

/** Staged entries chained per transaction. */
const CHAIN_BATCH = 500

interface StagedRow {
  readonly pos: bigint
  readonly id: string
  readonly orgId: string
  readonly runId: string
  readonly eventId: string
  readonly flowId: string | null
  readonly userId: string | null
  readonly eventType: string
  readonly timestamp: Date
  readonly entry: unknown
}

/**
 * Appends an org's staged entries to its chain, in staging order, in batches: each batch is one transaction that
 * locks the org's head, inserts the entries with their hashes ({@link chainHash}), moves the head and removes them
 * from the stage. Chainers of several processes take turns on the head. Returns how many entries it chained.
 */
export async function chainOrgAudit(db: SqlPool, orgId: string): Promise<number> {
  let chained = 0
  for (;;) {
    const n = await db.transaction(async (tx) => {
      let [head] = await tx.query<{ seq: bigint; hash: string }>(Prisma.sql`SELECT "seq", "hash" FROM "AuditChainHead" WHERE "orgId" = ${orgId}::uuid FOR UPDATE`)
      if (!head) {
        await tx.execute(Prisma.sql`INSERT INTO "AuditChainHead" ("orgId", "seq", "hash") VALUES (${orgId}::uuid, 0, ${GENESIS_HASH}) ON CONFLICT DO NOTHING`)
        ;[head] = await tx.query<{ seq: bigint; hash: string }>(Prisma.sql`SELECT "seq", "hash" FROM "AuditChainHead" WHERE "orgId" = ${orgId}::uuid FOR UPDATE`)
        if (!head) throw new Error(`chainAudit: could not create the chain head of org ${orgId}`)
      }
      // Under the head's lock no other chainer reads the org's stage: what is here is this batch's.
      const staged = await tx.query<StagedRow>(Prisma.sql`
        SELECT "pos", "id", "orgId", "runId", "eventId", "flowId", "userId", "eventType", "timestamp", "entry"
        FROM "AuditStaged" WHERE "orgId" = ${orgId}::uuid ORDER BY "pos" LIMIT ${CHAIN_BATCH}`)
      if (staged.length === 0) return 0
      let seq = head.seq
      let prevHash = head.hash
      const rows = staged.map((s) => {
        const hash = chainHash(prevHash, s.entry)
        seq += 1n
        const row = { ...s, pos: undefined, seq: seq.toString(), timestamp: s.timestamp.toISOString(), prevHash, hash }
        prevHash = hash
        return row
      })
      await tx.execute(Prisma.sql`
        WITH x AS (SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
          AS x("id" uuid, "orgId" uuid, "seq" bigint, "runId" uuid, "eventId" uuid, "flowId" uuid, "userId" uuid, "eventType" text,
               "timestamp" timestamptz, "entry" jsonb, "prevHash" text, "hash" text)),
        ins AS (
          INSERT INTO "AuditEntry" ("id", "orgId", "seq", "runId", "eventId", "flowId", "userId", "eventType", "timestamp", "entry", "prevHash", "hash")
          SELECT "id", "orgId", "seq", "runId", "eventId", "flowId", "userId", "eventType", "timestamp", "entry", "prevHash", "hash" FROM x
          RETURNING 1
        ),
        unstaged AS (DELETE FROM "AuditStaged" WHERE "pos" = ANY(${staged.map((s) => s.pos.toString())}::bigint[]) RETURNING 1)
        UPDATE "AuditChainHead" SET "seq" = ${seq.toString()}::bigint, "hash" = ${prevHash}
        WHERE "orgId" = ${orgId}::uuid AND (SELECT count(*) FROM ins) = ${staged.length} AND (SELECT count(*) FROM unstaged) = ${staged.length}`)
      return staged.length
    }, { timeoutMs: 30_000 })
    chained += n
    if (n < CHAIN_BATCH) return chained
  }
}

/** Chains every org's staged entries ({@link chainOrgAudit}), or only `orgId`'s. Returns how many it chained. */
export async function chainAudit(db: SqlPool, orgId?: string): Promise<number> {
  const orgs = orgId
    ? (await db.query<{ orgId: string }>(Prisma.sql`SELECT "orgId" FROM "AuditStaged" WHERE "orgId" = ${orgId}::uuid LIMIT 1`)).map((r) => r.orgId)
    : (await db.query<{ orgId: string }>(Prisma.sql`SELECT DISTINCT "orgId" FROM "AuditStaged"`)).map((r) => r.orgId)
  let chained = 0
  for (const org of orgs) chained += await chainOrgAudit(db, org)
  return chained
}

/**
 * A process's chainer: runs {@link chainAudit} passes in the background when asked (`kick()`, after work that may
 * have staged entries), one at a time and at most one per `minIntervalMs`, so that a busy moment's entries go into
 * the chain together (a few statements per org per pass, whatever the number of entries). Staged entries are durable:
 * whatever a crash leaves is chained by the next pass of any process.
 */
export class AuditChainer {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private wanted = false
  private lastEnd = 0
  private closed = false
  private readonly minIntervalMs: number
  private readonly onError: (err: unknown) => void

  constructor(
    private readonly db: SqlPool,
    options: { readonly minIntervalMs?: number; readonly onError?: (err: unknown) => void } = {},
  ) {
    this.minIntervalMs = options.minIntervalMs ?? 100
    this.onError = options.onError ?? (() => undefined)
  }

  /** Asks for a pass soon. */
  kick(): void {
    this.wanted = true
    if (this.closed || this.running || this.timer) return
    this.timer = setTimeout(() => this.start(), Math.max(0, this.lastEnd + this.minIntervalMs - Date.now()))
  }

  private start(): void {
    this.timer = undefined
    this.wanted = false
    this.running = chainAudit(this.db)
      .then(() => undefined, this.onError)
      .finally(() => {
        this.running = undefined
        this.lastEnd = Date.now()
        if (this.wanted) this.kick()
      })
  }

  /** Chains everything staged now (after the pass in progress, if any). Never rejects; errors go to `onError`. */
  async flush(): Promise<void> {
    await this.running
    await chainAudit(this.db).then(() => undefined, this.onError)
  }

  /** Stops kicking, then chains what is staged (a graceful shutdown leaves nothing behind). */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    await this.flush()
  }
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
