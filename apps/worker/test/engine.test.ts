/**
 * The worker process running the engine, as production runs it (`src/main.ts` in a child process), against real
 * PostgreSQL and Redis and the http strategy POSTing to a local receiver: a worker killed between the strategy call
 * and recording it, and a Redis that loses every job while access is granted.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import { createDb, type Db, type Prisma } from '@opensym/db'
import type { Principal } from '@opensym/domain'
import { chainAudit, EngineQueues, RunService } from '@opensym/engine'
import { createTestOrg, startHttpReceiver, type HttpReceiver, type TestOrg } from '@opensym/testing'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'

const root = resolve(import.meta.dirname, '../../..')
let db: Db
let redis: Redis
let prefix: string
let queues: EngineQueues
let service: RunService
let receiver: HttpReceiver
let org: TestOrg
let bot: Principal
let admin: Principal
const children = new Set<ChildProcess>()

/** Starts `src/main.ts` and resolves once it logs "worker ready". Fast lock expiry so a killed worker's job is taken over quickly. */
async function startChild(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@opensym/source', 'apps/worker/src/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: inject('databaseUrl'),
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'info',
      JOB_LOCK_DURATION_MS: '1000',
      JOB_STALLED_INTERVAL_MS: '500',
      RECONCILE_INTERVAL_MS: '1000',
      JOB_BACKOFF_MS: '100',
      WORKER_DB_POOL_SIZE: '5',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  child.on('exit', () => children.delete(child))
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  await new Promise<void>((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`no "worker ready" line; got: ${out}`)), 40_000)
    const check = () => {
      if (out.includes('worker ready')) {
        clearTimeout(t)
        ok()
      }
    }
    child.stdout.on('data', check)
    child.on('exit', (code) => fail(new Error(`worker exited (${code}) before it was ready: ${out}`)))
  })
  return child
}

function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()))
  child.kill(signal)
  return exited
}

async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const received = (type: 'escalate' | 'deescalate', runId: string) =>
  receiver.received(type).filter((r) => ((r.json as { run: { srn: string } }).run.srn).endsWith(runId))

async function createFlow(): Promise<{ slug: string; targetId: string }> {
  const suffix = randomBytes(3).toString('hex')
  const env = await db.environment.upsert({ where: { orgId_slug: { orgId: org.id, slug: 'main' } }, update: {}, create: { orgId: org.id, slug: 'main' } })
  const strategy = await db.strategy.create({ data: { orgId: org.id, type: 'http', slug: `grant-${suffix}`, settings: { url: `${receiver.url}/grant` } } })
  const target = await db.target.create({ data: { orgId: org.id, type: 'custom', slug: `db-${suffix}`, settings: { identifier: suffix } } })
  await db.strategyTarget.create({ data: { strategyId: strategy.id, targetId: target.id, position: 0 } })
  const params: Prisma.InputJsonValue = { prompt_fields: [{ name: 'duration', type: 'duration' }] }
  const flow = await db.flow.create({ data: { orgId: org.id, slug: `access-${suffix}`, implementation: 'export {}', environmentId: env.id, strategyId: strategy.id, params } })
  return { slug: flow.slug, targetId: target.id }
}

async function approvedRun(duration: number, flow: { slug: string; targetId: string }): Promise<string> {
  const { run_id } = await service.createRequest(bot, { flow_srn: flow.slug, flow_inputs: { duration, target_id: flow.targetId }, user_email: 'member@example.com' })
  await service.decide(admin, 'approve', { run_id })
  return run_id
}

const runStatus = (runId: string, status: string) =>
  eventually(async () => {
    const r = await db.run.findUniqueOrThrow({ where: { id: runId }, include: { events: true } })
    return r.status === status && r.events.every((e) => e.status !== 'pending') && r
  }, `run ${runId} to be ${status}`)

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 4 })
  redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null })
  prefix = `${inject('redisPrefix')}-worker-${randomBytes(3).toString('hex')}`
  queues = new EngineQueues({ connection: redis, prefix })
  service = new RunService({ db, queues })
  receiver = await startHttpReceiver()
  org = await createTestOrg(db, 'worker')
  const users = await db.user.findMany({ where: { orgId: org.id } })
  const principal = (u: (typeof users)[number]): Principal => ({ orgId: org.id, userId: u.id, userType: u.type, role: u.role })
  bot = principal(users.find((u) => u.type === 'bot')!)
  admin = principal(users.find((u) => u.role === 'admin' && u.type === 'normal')!)
})

afterEach(async () => {
  await Promise.all([...children].map((c) => kill(c)))
  receiver.respondWith(undefined)
})

afterAll(async () => {
  await queues?.close()
  await receiver?.close()
  redis?.disconnect()
  await db?.$disconnect()
})

describe('the worker process', () => {
  it('killed between the strategy call and recording it, then restarted: exactly one effective grant', async () => {
    const flow = await createFlow()
    let worker = await startChild()
    // The target applies the grant, then the worker dies before it hears back and before it commits.
    let killed = false
    receiver.respondWith((req) => {
      if (!killed && (req.json as { event?: { type?: string } }).event?.type === 'escalate') {
        killed = true
        worker.kill('SIGKILL')
        return { delayMs: 60_000 }
      }
      return undefined
    })
    const runId = await approvedRun(3, flow)
    await eventually(async () => killed && worker.exitCode === null && worker.signalCode !== null, 'the worker to be killed')
    expect(received('escalate', runId)).toHaveLength(1)
    const before = await db.run.findUniqueOrThrow({ where: { id: runId }, include: { leases: true } })
    expect(before.status).toBe('approved')
    expect(before.leases).toHaveLength(0)

    worker = await startChild()
    const escalated = await runStatus(runId, 'escalated')
    // The retried job called the (idempotent) strategy again and recorded it once.
    expect(received('escalate', runId)).toHaveLength(2)
    expect(escalated.events.filter((e) => e.name === 'escalate')).toEqual([expect.objectContaining({ status: 'success' })])
    const leases = await db.grantLease.findMany({ where: { runId }, include: { grant: { include: { leases: true } } } })
    expect(leases).toHaveLength(1)
    expect(leases[0]!.grant).toMatchObject({ applied: true })
    expect(leases[0]!.grant.leases).toHaveLength(1)
    const escalateEvent = escalated.events.find((e) => e.name === 'escalate')!
    await chainAudit(db.sql)
    expect(await db.auditEntry.count({ where: { eventId: escalateEvent.id } })).toBe(1)

    const done = await runStatus(runId, 'deescalated')
    expect(received('deescalate', runId)).toHaveLength(1)
    expect(done.events.filter((e) => e.name === 'deescalate')).toHaveLength(1)
    expect(await db.grant.findUniqueOrThrow({ where: { id: leases[0]!.grantId } })).toMatchObject({ applied: false })
  }, 120_000)

  it('Redis loses every job while runs are escalated: after a restart each is de-escalated on time', async () => {
    const worker = await startChild()
    // Long enough to outlast the restart below, so "on time" means on time.
    const runs = await Promise.all([12, 13, 14].map(async (d) => approvedRun(d, await createFlow())))
    for (const id of runs) await runStatus(id, 'escalated')
    await kill(worker)
    // What FLUSHALL does to this stack (other stacks share this Redis, so only our keys go).
    let cursor = '0'
    let deleted = 0
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500)
      if (keys.length) deleted += await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
    expect(deleted).toBeGreaterThan(0)

    await startChild()
    for (const id of runs) {
      const r = await runStatus(id, 'deescalated')
      const lateness = r.deescalatedAt!.getTime() - r.expiresAt!.getTime()
      expect(lateness, `run ${id} de-escalated ${lateness} ms after it expired`).toBeGreaterThanOrEqual(0)
      expect(lateness, `run ${id} de-escalated ${lateness} ms after it expired`).toBeLessThan(3000)
      expect(received('deescalate', id)).toHaveLength(1)
    }
  }, 120_000)
})
