/**
 * `admin queues`: counts per queue, failed jobs with their reasons, retry and clean, against real Redis under a
 * prefix of this file's own.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { createDb, type Db } from '@opensym/db'
import { EngineQueues, QUEUE_NAMES } from '@opensym/engine'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { run } from '../src/cli.js'

let db: Db
let redis: Redis
let prefix: string
let queues: EngineQueues

beforeAll(() => {
  db = createDb(inject('databaseUrl'), { poolSize: 1 })
  redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null })
  prefix = `${inject('redisPrefix')}-admin-${randomBytes(3).toString('hex')}`
  // One attempt, so a job fails for good at once.
  queues = new EngineQueues({ connection: redis, prefix, attempts: 1 })
})
afterAll(async () => {
  await queues?.close()
  redis?.disconnect()
  await db?.$disconnect()
})

async function admin(...argv: string[]) {
  const lines: string[] = []
  const code = await run(argv, db, { out: (t) => lines.push(t) }, { redis: () => redis, queuePrefix: prefix })
  const text = lines.join('\n')
  return { code, text, json: <T>() => JSON.parse(text) as T }
}

type Row = { queue: string; waiting: number; active: number; delayed: number; failed: number; completed: number; is_paused: boolean }
const row = async (queue: string) => (await admin('queues', 'list', '--json')).json<Row[]>().find((r) => r.queue === queue)

/** Runs the escalate queue's jobs with a processor that always throws, until `n` have failed. */
async function failEscalations(n: number): Promise<void> {
  const w = new Worker(QUEUE_NAMES.escalate, () => Promise.reject(new Error('the target said: 403 not allowed')), { connection: redis, prefix })
  try {
    const until = Date.now() + 15_000
    while ((await queues.queue('escalate').getFailedCount()) < n) {
      if (Date.now() > until) throw new Error('the jobs did not fail')
      await new Promise((r) => setTimeout(r, 50))
    }
  } finally {
    await w.close()
  }
}

describe('admin queues', () => {
  it('lists every engine queue and other queues under the prefix, with counts per state', async () => {
    await queues.enqueueEvent('request', randomUUID())
    await queues.scheduleDeescalation(randomUUID(), new Date(Date.now() + 3_600_000))
    const other = new Queue('log-delivery', { connection: redis, prefix })
    await other.add('deliver', { entryId: 'x' })
    await other.close()

    const list = await admin('queues', 'list', '--json')
    expect(list.code).toBe(0)
    const rows = list.json<Row[]>()
    expect(rows.map((r) => r.queue).sort()).toEqual([...Object.values(QUEUE_NAMES), 'log-delivery'].sort())
    expect(rows.find((r) => r.queue === 'request')).toMatchObject({ waiting: 1, delayed: 0, failed: 0, is_paused: false })
    expect(rows.find((r) => r.queue === 'deescalate')).toMatchObject({ waiting: 0, delayed: 1 })
    expect(rows.find((r) => r.queue === 'log-delivery')).toMatchObject({ waiting: 1 })

    // Text: a table, one line per queue, and the prefix; `queues` alone is the same.
    const text = await admin('queues')
    expect(text.code).toBe(0)
    expect(text.text.split('\n')[0]).toMatch(/^queue\s+waiting\s+active\s+delayed\s+prioritized\s+failed\s+completed/)
    expect(text.text).toMatch(/^request\s+1\s+0\s+0\s+0\s+0\s+0/m)
    expect(text.text).toContain(`(prefix ${prefix})`)
  })

  it('shows failed jobs with their reasons, retries one or all, and cleans them', async () => {
    const [a, b] = [randomUUID(), randomUUID()]
    await queues.enqueueEvent('escalate', a)
    await queues.enqueueEvent('escalate', b)
    await failEscalations(2)

    const failed = await admin('queues', 'failed', 'escalate', '--json')
    expect(failed.code).toBe(0)
    const listed = failed.json<{ total: number; jobs: { id: string; name: string; attempts_made: number; reason: string; failed_at: string; data: unknown }[] }>()
    expect(listed.total).toBe(2)
    expect(listed.jobs.map((j) => j.id).sort()).toEqual([`escalate-${a}`, `escalate-${b}`].sort())
    expect(listed.jobs[0]).toMatchObject({ name: 'event', attempts_made: 1, reason: 'the target said: 403 not allowed', failed_at: expect.any(String) })
    expect(listed.jobs.map((j) => j.data)).toContainEqual({ eventId: a })
    const text = await admin('queues', 'failed', 'escalate', '--limit', '1')
    expect(text.text).toMatch(/^2 failed jobs in escalate \(newest 1 shown\)\n/)
    expect(text.text).toContain('the target said: 403 not allowed')

    // One job back to waiting…
    expect((await admin('queues', 'retry', 'escalate', `escalate-${a}`)).text).toBe(`retried job escalate-${a} of escalate`)
    expect(await row('escalate')).toMatchObject({ waiting: 1, failed: 1 })
    // …a job that is not failed is refused…
    expect(await admin('queues', 'retry', 'escalate', `escalate-${a}`)).toMatchObject({ code: 1, text: `error: job "escalate-${a}" of escalate is waiting, not failed` })
    // …then all of them.
    expect((await admin('queues', 'retry', 'escalate', '--all', '--json')).json()).toEqual({ queue: 'escalate', retried: 1 })
    expect(await row('escalate')).toMatchObject({ waiting: 2, failed: 0 })

    // Failing again, they are cleaned: nothing older than an hour, everything otherwise.
    await failEscalations(2)
    expect((await admin('queues', 'clean', 'escalate', '--state', 'failed', '--older-than', '1h', '--json')).json()).toEqual({ queue: 'escalate', state: 'failed', removed: 0 })
    expect((await admin('queues', 'clean', 'escalate', '--state', 'failed')).text).toBe('removed 2 failed jobs from escalate')
    expect(await row('escalate')).toMatchObject({ waiting: 0, failed: 0 })
    expect((await admin('queues', 'failed', 'escalate')).text).toBe('no failed jobs in escalate')
  })

  it.each([
    [['queues', 'failed'], 2, 'queues failed needs a queue name'],
    [['queues', 'failed', 'nope'], 1, 'no queue "nope" under prefix'],
    [['queues', 'retry', 'escalate'], 2, 'needs a job id'],
    [['queues', 'retry', 'escalate', 'escalate-x', '--all'], 2, 'not both'],
    [['queues', 'retry', 'escalate', 'no-such-job'], 1, 'no job "no-such-job" in escalate'],
    [['queues', 'clean', 'escalate', '--state', 'waiting'], 2, '--state must be failed or completed'],
    [['queues', 'clean', 'escalate', '--state', 'failed', '--older-than', 'soon'], 2, 'not a duration'],
    [['queues', 'failed', 'escalate', '--limit', 'many'], 2, '--limit must be a whole number'],
    [['queues', 'pause'], 2, 'unknown command "queues pause"'],
  ])('%j exits %i: %s', async (argv, code, message) => {
    const res = await admin(...argv)
    expect(res.code).toBe(code)
    expect(res.text).toMatch(/^error: /)
    expect(res.text).toContain(message)
  })

  it('needs Redis', async () => {
    const lines: string[] = []
    expect(await run(['queues', 'list'], db, { out: (t) => lines.push(t) })).toBe(2)
    expect(lines).toEqual(['error: queues commands need Redis (REDIS_URL)'])
  })
})
