/**
 * The engine's `ErrorReporter` on Slack: failures go to the environment's `sym_error_logger` channel with what a
 * person needs to act (flow, run, step, message). Grouped and rate-limited per process, so a flow failing in a loop
 * cannot flood the channel: the first failure of a kind (environment, flow, step, message) in a window is posted,
 * repeats are counted and summarised with the next post of that kind; at most `maxPerWindow` posts per environment
 * per window, the rest counted the same way. Never throws (the seam's contract): a failed post is logged.
 */
import type { Db } from '@opensym/db'
import { silentLogger, systemClock, type Clock, type EngineFailure, type EngineLogger, type ErrorReporter } from '@opensym/engine'
import { context, escapeMrkdwn, section, truncate } from './blocks.js'
import type { SlackClients } from './client.js'
import type { Installations } from './installations.js'

export interface SlackReporterOptions {
  readonly db: Db
  readonly installations: Installations
  readonly clients: SlackClients
  readonly logger?: EngineLogger
  readonly clock?: Clock
  /** Default 60 s. */
  readonly windowMs?: number
  /** Posts per environment per window. Default 5. */
  readonly maxPerWindow?: number
}

interface Group {
  windowStart: number
  suppressed: number
}

const MAX_GROUPS = 5000

export function slackErrorReporter(o: SlackReporterOptions): ErrorReporter & { readonly pending: () => Promise<void> } {
  const log = o.logger ?? silentLogger
  const clock = o.clock ?? systemClock
  const windowMs = o.windowMs ?? 60_000
  const maxPerWindow = o.maxPerWindow ?? 5
  const groups = new Map<string, Group>()
  const budgets = new Map<string, { windowStart: number; used: number }>()
  let inFlight: Promise<void> = Promise.resolve()

  async function post(f: EngineFailure): Promise<void> {
    if (!f.environmentId) return
    const env = await o.db.environment.findUnique({ where: { id: f.environmentId }, select: { slug: true, errorLogger: { select: { integrationId: true, destination: true } } } })
    if (!env?.errorLogger) return
    const run = await o.db.run.findUnique({ where: { id: f.runId }, select: { flowSlug: true } })
    const flow = run?.flowSlug ?? 'unknown'
    const now = clock().getTime()
    const key = `${f.environmentId}|${flow}|${f.step}|${f.message}`
    const g = groups.get(key)
    if (g && now - g.windowStart < windowMs) {
      g.suppressed++
      return
    }
    const budget = budgets.get(f.environmentId)
    if (budget && now - budget.windowStart < windowMs && budget.used >= maxPerWindow) {
      if (g) g.suppressed++
      else groups.set(key, { windowStart: budget.windowStart, suppressed: 1 })
      return
    }
    if (!budget || now - budget.windowStart >= windowMs) budgets.set(f.environmentId, { windowStart: now, used: 1 })
    else budget.used++
    const repeats = g?.suppressed ?? 0
    if (groups.size > MAX_GROUPS) groups.clear()
    groups.set(key, { windowStart: now, suppressed: 0 })

    const inst = await o.installations.byIntegration(env.errorLogger.integrationId)
    if (!inst) return
    const text = `:rotating_light: *${escapeMrkdwn(f.step)} failed* in flow \`${escapeMrkdwn(flow)}\` (environment \`${escapeMrkdwn(env.slug)}\`)\n${escapeMrkdwn(truncate(f.message, 2500))}`
    const extra = repeats > 0 ? ` · ${repeats} more like this since the last post` : ''
    await o.clients.forToken(inst.token).chat.postMessage({
      channel: env.errorLogger.destination,
      // The notification text is parsed for mentions too; failure messages can carry requesters' input.
      text: escapeMrkdwn(`${f.step} failed in flow ${flow}: ${truncate(f.message, 2500)}`),
      blocks: [section(text), context(`Run \`${f.runId}\` · event \`${f.eventId}\`${extra}`)] as never,
    })
  }

  const reporter = (f: EngineFailure): Promise<void> => {
    const p = post(f).catch((err: unknown) => log.warn({ err, runId: f.runId, step: f.step }, 'could not post to the error logger channel'))
    inFlight = inFlight.then(() => p)
    return p
  }
  return Object.assign(reporter, { pending: () => inFlight })
}
