import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { pino } from 'pino'
import { describe, expect, inject, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { startWorker } from '../src/worker.js'

const silent = pino({ level: 'silent' })
/** Queues of these tests' own, never the default prefix a local stack may be using on this Redis. */
const QUEUE_PREFIX = `${inject('redisPrefix')}-lifecycle`

describe('worker lifecycle', () => {
  it('connects to PostgreSQL and Redis, then stops cleanly (twice is fine)', async () => {
    const config = loadConfig({ DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl'), QUEUE_PREFIX })
    const w = await startWorker(config, silent)
    expect(await w.redis.ping()).toBe('PONG')
    expect(await w.db.organization.count()).toBeGreaterThanOrEqual(0)
    await w.stop()
    await w.stop()
    await expect(w.redis.ping()).rejects.toThrow(/Connection is closed/)
  })

  it('fails to start with a clear error when Redis is unreachable', async () => {
    const config = loadConfig({ DATABASE_URL: inject('databaseUrl'), REDIS_URL: 'redis://127.0.0.1:1', QUEUE_PREFIX })
    await expect(startWorker(config, silent)).rejects.toThrow(/worker could not connect to Redis: .*ECONNREFUSED 127.0.0.1:1/)
  })

  it('rejects bad configuration naming the variable', () => {
    expect(() => loadConfig({ QUEUE_PREFIX: 'has:colon' })).toThrow(/QUEUE_PREFIX/)
    expect(() => loadConfig({ JOB_ATTEMPTS: '0' })).toThrow(/JOB_ATTEMPTS/)
    expect(() => loadConfig({ RECONCILE_INTERVAL_MS: 'often' })).toThrow(/RECONCILE_INTERVAL_MS/)
  })

  it('reads the engine settings from the environment, with defaults', () => {
    expect(loadConfig({})).toMatchObject({ concurrency: 10, jobAttempts: 8, jobBackoffMs: 1000, reconcileIntervalMs: 5000, lockDurationMs: 30_000 })
    expect(loadConfig({ WORKER_CONCURRENCY: '4', JOB_ATTEMPTS: '3', RECONCILE_INTERVAL_MS: '0', STRATEGY_TIMEOUT_MS: '5000' })).toMatchObject({
      concurrency: 4,
      jobAttempts: 3,
      reconcileIntervalMs: 0,
      strategyTimeoutMs: 5000,
    })
  })

  it('as a process: logs ready, and exits 0 on SIGTERM', async () => {
    const root = resolve(import.meta.dirname, '../../..')
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@opensym/source', 'apps/worker/src/main.ts'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl'), QUEUE_PREFIX },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    await new Promise<void>((ok, fail) => {
      const t = setTimeout(() => fail(new Error(`no "worker ready" line; got: ${out}`)), 30_000)
      child.stdout.on('data', () => {
        if (out.includes('worker ready')) {
          clearTimeout(t)
          ok()
        }
      })
    })
    child.kill('SIGTERM')
    const code = await new Promise<number | null>((ok) => child.on('exit', ok))
    expect(code).toBe(0)
    expect(out).toContain('worker stopped')
    // Logs are JSON lines.
    for (const line of out.trim().split('\n')) expect(() => JSON.parse(line) as unknown).not.toThrow()
  }, 40_000)
})
