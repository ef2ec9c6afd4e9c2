/**
 * The `slack` section's measurements (run by scripts/bench/slack.mjs in a child process, with tsx and the source
 * condition): the API with the Slack app listening on a real port, the engine worker with the Slack notifier on its
 * notify queue, the local Slack fake, and a strategy that records when it is called. Per run: a request through the
 * Events API, its card posted by the engine's notify queue, then a signed Approve click over HTTP; measured from the
 * click to (a) its acknowledgement, (b) the strategy's escalate call, (c) the fake receiving the card's
 * `chat.update`. Prints one JSON line of results.
 *
 * argv[2]: {"runs": n, "concurrency": c}; env DATABASE_URL (migrated), REDIS_URL.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { buildApp } from '@opensym/api'
import { createDb } from '@opensym/db'
import { EngineQueues, startEngineWorker, type Strategy, type StrategyCall, type StrategyOutput } from '@opensym/engine'
import { createTestOrg, startFakeSlack } from '@opensym/testing'
import { Redis } from 'ioredis'
import { ACTION_APPROVE, Installations, SlackClients, SlackNotifier, TokenCipher } from '../src/index.js'

const config = JSON.parse(process.argv[2] ?? '{}') as { runs?: number; concurrency?: number }
const RUNS = config.runs ?? 100
const CONCURRENCY = config.concurrency ?? 1
const SECRET = randomBytes(16).toString('hex')
const TOKEN_KEY = randomBytes(32).toString('base64')

/** Records when escalate is called for each run (the run id is the last part of the run's SRN). */
class TimedStrategy implements Strategy {
  readonly type = 'http'
  readonly escalatedAt = new Map<string, number>()
  async identity(call: Omit<StrategyCall, 'identity' | 'payload'>): Promise<string> {
    return call.subject.email ?? call.subject.username
  }
  async escalate(call: StrategyCall): Promise<StrategyOutput> {
    const srn = (call.payload.run as { srn?: string } | undefined)?.srn ?? ''
    this.escalatedAt.set(srn.split(':').at(-1)!, performance.timeOrigin + performance.now())
    return { body: {}, errors: [] }
  }
  async deescalate(): Promise<StrategyOutput> {
    return { body: {}, errors: [] }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function until<T>(check: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
const stats = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b)
  return { n: s.length, p50: pct(s, 50), p99: pct(s, 99), max: s.at(-1)! }
}

async function main(): Promise<void> {
  const db = createDb(process.env.DATABASE_URL!, { poolSize: 10 })
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null })
  const prefix = `bench_slack_${randomBytes(4).toString('hex')}`
  const fake = await startFakeSlack()
  const team = fake.addTeam({ name: 'bench' })
  const approver = fake.addUser({ teamId: team.id, email: 'admin@example.com', name: 'Ada' })
  fake.addUser({ teamId: team.id, email: 'member@example.com', name: 'Mia' })
  fake.addChannel({ teamId: team.id, name: 'sym-requests' })
  const queues = new EngineQueues({ connection: redis, prefix })
  const app = await buildApp({ config: { logLevel: 'silent', metricsEnabled: false }, db, redis, queues, slack: { signingSecret: SECRET, tokenKey: TOKEN_KEY, apiUrl: fake.apiUrl } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  const installations = new Installations(db, TokenCipher.fromConfig(TOKEN_KEY))
  const clients = new SlackClients({ apiUrl: fake.apiUrl })
  const strategy = new TimedStrategy()
  const worker = await startEngineWorker({ db, connection: redis, prefix, strategies: new Map([['http', strategy]]), notifier: new SlackNotifier({ db, installations, clients }), reconcileIntervalMs: 0, concurrency: 10 })
  const org = await createTestOrg(db, 'bench-slack')
  const call = async (method: string, path: string, body: unknown) => {
    const res = await fetch(`${base}/api/v1/${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${org.tokens.bot}` }, body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${await res.text()}`)
    return (await res.json()) as Record<string, string>
  }
  try {
    const integration = await call('POST', 'entities/integrations', { type: 'slack', slug: 'bench-slack', external_id: team.id, settings: {} })
    const env = await call('POST', 'entities/environments', { slug: 'bench', integrations: { slack_id: integration.id } })
    const target = await call('POST', 'entities/access-targets', { type: 'custom', slug: 'db', label: 'DB', settings: { identifier: 'db' } })
    const strat = await call('POST', 'entities/access-strategies', { type: 'http', slug: 'grant', integration_id: '<null>', targets: [target.id], settings: { url: 'http://127.0.0.1:9/unused' } })
    await call('POST', 'entities/flows', {
      slug: 'bench-access',
      implementation: Buffer.from('export {}').toString('base64'),
      environment_id: env.id,
      params: { strategy_id: strat.id, prompt_fields: [{ name: 'reason', type: 'string' }, { name: 'duration', type: 'duration' }] },
    })
    await installations.save({ orgId: org.id, integrationId: integration.id!, teamId: team.id, botUserId: team.botUserId, token: fake.botToken(team.id), scopes: 'chat:write' })
    const driver = fake.driver(SECRET)
    // One requester per run: a grant already held is not granted again, so each run must call the strategy.
    await db.user.createMany({ data: Array.from({ length: RUNS }, (_, i) => ({ orgId: org.id, email: `bench-${i}@example.com`, username: `bench-${i}@example.com`, role: 'member' as const })) })

    const ack: number[] = []
    const toStrategy: number[] = []
    const toCard: number[] = []
    let next = 0
    const one = async (i: number) => {
      const { run_id } = await call('POST', 'events/request', { flow_srn: 'bench-access', flow_inputs: { reason: 'bench', duration: 3600, target_id: target.id }, user_email: `bench-${i}@example.com` })
      const card = await until(() => db.slackMessage.findFirst({ where: { runId: run_id } }).then((m) => m ?? undefined), `the card of ${run_id}`)
      const inbound = driver.blockActions({ team: team.id, user: { id: approver.id, teamId: team.id }, channel: card.channel, messageTs: card.ts, actionId: ACTION_APPROVE, value: run_id! })
      const t0 = performance.timeOrigin + performance.now()
      const res = await fetch(`${base}${inbound.path}`, { method: 'POST', headers: inbound.headers, body: inbound.body })
      ack.push(performance.timeOrigin + performance.now() - t0)
      if (res.status !== 200) throw new Error(`click → ${res.status}: ${await res.text()}`)
      const escalated = await until(() => strategy.escalatedAt.get(run_id!), `escalate of ${run_id}`)
      toStrategy.push(escalated - t0)
      const update = await until(() => fake.requests.find((r) => r.operation === 'chat.update' && r.body.includes(`ts=${encodeURIComponent(card.ts)}`) && r.receivedAt.getTime() >= t0 - 1), `the card update of ${run_id}`)
      toCard.push(update.receivedAt.getTime() - t0)
    }
    const lanes = Array.from({ length: CONCURRENCY }, async () => {
      while (next < RUNS) await one(next++)
    })
    await Promise.all(lanes)
    console.log(JSON.stringify({ runs: RUNS, concurrency: CONCURRENCY, ack: stats(ack), strategy: stats(toStrategy), card: stats(toCard) }))
  } finally {
    await worker.close()
    await app.close()
    await queues.close()
    await fake.close()
    redis.disconnect()
    await db.$disconnect()
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err)
  process.exit(1)
})
