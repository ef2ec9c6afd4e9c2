/**
 * The API with an in-process engine worker and an http access flow configured through the entities API, for tests
 * that drive runs over HTTP and look at what operators see (metrics, traces).
 */
import { randomBytes } from 'node:crypto'
import { createDb, type Db } from '@opensym/db'
import { builtinStrategies, EngineQueues, startEngineWorker, type EngineWorker } from '@opensym/engine'
import { createTestOrg, startHttpReceiver, type HttpReceiver, type TestOrg } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { inject } from 'vitest'
import { buildApp } from '../src/app.js'

// Responses are read as loose JSON; the schemas under test check their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>

export interface RunHarness {
  readonly db: Db
  readonly redis: Redis
  readonly queues: EngineQueues
  readonly app: FastifyInstance
  readonly worker: EngineWorker
  readonly receiver: HttpReceiver
  readonly org: TestOrg
  /** Two targets of the flow's strategy (a second run for the same user and target finds access already granted). */
  readonly targetIds: readonly [string, string]
  /** Calls the API (bot token unless given); throws on a status of 300 or more. */
  ok(method: 'GET' | 'POST', url: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<Json>
  /** Requests access (to the first target by default) as the bot for member@example.com and approves it as the admin. */
  approvedRun(durationSeconds: number, opts?: { headers?: Record<string, string>; targetId?: string }): Promise<string>
  /** Polls until the run has `status` and no pending event. */
  runIs(runId: string, status: string): Promise<Json>
  close(): Promise<void>
}

export async function startRunHarness(name: string): Promise<RunHarness> {
  const db = createDb(inject('databaseUrl'), { poolSize: 6 })
  const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null })
  const prefix = `${inject('redisPrefix')}-${name}-${randomBytes(3).toString('hex')}`
  const queues = new EngineQueues({ connection: redis, prefix })
  const app = await buildApp({ config: { logLevel: 'silent' }, db, redis, queues })
  const worker = await startEngineWorker({ db, connection: redis, prefix, strategies: builtinStrategies(), reconcileIntervalMs: 0, concurrency: 4 })
  const receiver = await startHttpReceiver()
  const org = await createTestOrg(db, name)

  const ok: RunHarness['ok'] = async (method, url, opts = {}) => {
    const res = await app.inject({
      method,
      url: `/api/v1/${url}`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.token ?? org.tokens.bot}`, ...opts.headers },
      payload: JSON.stringify(opts.body ?? null),
    })
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode}: ${res.body}`)
    return res.json<Json>()
  }

  const env = await ok('POST', 'entities/environments', { body: { slug: 'prod' } })
  const target = await ok('POST', 'entities/access-targets', { body: { type: 'custom', slug: 'staging-db', label: 'Staging DB', settings: { identifier: 'staging' } } })
  const other = await ok('POST', 'entities/access-targets', { body: { type: 'custom', slug: 'cache', label: 'Cache', settings: { identifier: 'cache' } } })
  const strategy = await ok('POST', 'entities/access-strategies', {
    body: { type: 'http', slug: 'grant', integration_id: '<null>', targets: [target.id, other.id], settings: { url: `${receiver.url}/grant` } },
  })
  await ok('POST', 'entities/flows', {
    body: {
      slug: 'db-access',
      implementation: Buffer.from('export {}').toString('base64'),
      environment_id: env.id,
      params: { strategy_id: strategy.id, allow_revoke: true, prompt_fields: [{ name: 'duration', type: 'duration', required: true }] },
    },
  })

  const runIs: RunHarness['runIs'] = async (runId, status) => {
    const until = Date.now() + 20_000
    for (;;) {
      const run = await ok('GET', `runs/${runId}`)
      if (run.status === status && (run.events as Json[]).every((e) => e.status !== 'pending')) return run
      if (Date.now() > until) throw new Error(`timed out waiting for run ${runId} to be ${status}; it is ${run.status}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  return {
    db,
    redis,
    queues,
    app,
    worker,
    receiver,
    org,
    targetIds: [target.id as string, other.id as string],
    ok,
    runIs,
    async approvedRun(durationSeconds, { headers, targetId = target.id as string } = {}) {
      const { run_id } = await ok('POST', 'events/request', {
        body: { flow_srn: `${org.slug}:flow:db-access:latest`, flow_inputs: { duration: durationSeconds, target_id: targetId }, user_email: 'member@example.com' },
        headers,
      })
      await ok('POST', 'events/approve', { token: org.tokens.admin, body: { run_id }, headers })
      return run_id as string
    },
    async close() {
      await worker.close()
      await app.close()
      await queues.close()
      await receiver.close()
      redis.disconnect()
      await db.$disconnect()
    },
  }
}
