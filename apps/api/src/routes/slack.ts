/**
 * The Slack app's endpoints, in a context of their own (outside bearer auth: Slack signs instead). Its content-type
 * parsers keep the raw bytes, which the v0 signature is verified on before anything is parsed or looked up; a bad
 * or stale signature, or a command or interaction received before (a replay), is a 401 and changes nothing. The
 * handlers are @opensym/slack's; work they defer runs after the acknowledgement is sent (Slack's 3 seconds).
 *
 * Flow code the handlers need (prefetch reducers for external selects, the flows filter's `getFlows` for `/sym`, a
 * flow's `onPrompt`/`afterPrompt` hooks around its form) runs in a FlowRuntime of this process, made only here, when
 * Slack is configured: it loads isolated-vm on first use, so the API runs with `node --no-node-snapshot`
 * (scripts/start.mjs, the api's npm start, its vitest config).
 */
import type { Db } from '@opensym/db'
import { createHostHandlers, FlowRuntime, type EngineLogger, type RunService } from '@opensym/engine'
import {
  createSlackHost,
  Installations,
  runtimeFlowsFilter,
  runtimePrefetch,
  runtimePromptHook,
  SlackClients,
  SlackHandlers,
  SlackOAuth,
  SlackQueue,
  slackManifest,
  SLACK_REPLAY_WINDOW_SECONDS,
  TokenCipher,
  verifySlackSignature,
  type FlowsFilter,
  type PrefetchOptions,
  type PromptHook,
  type SlackReply,
} from '@opensym/slack'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
import { Type } from 'typebox'

declare module 'fastify' {
  interface FastifyRequest {
    /** The body's bytes as received (Slack routes only): what the signature covers. */
    slackRawBody?: Buffer
  }
}

/** The Slack app's configuration (SLACK_* variables; see config.ts). */
export interface SlackApiOptions {
  readonly signingSecret: string
  /** SLACK_TOKEN_KEY: 32 bytes, base64 or hex. */
  readonly tokenKey: string
  readonly apiUrl?: string
  readonly clientId?: string
  readonly clientSecret?: string
  /** Where Slack and browsers reach this API (manifest URLs, OAuth redirect). */
  readonly publicUrl?: string
  readonly authorizeUrl?: string
  /** Milliseconds since the epoch, for the replay window (tests). */
  readonly now?: () => number
  /** Overrides of the flow-code hooks; default: the flow runtime's. */
  readonly flowsFilter?: FlowsFilter
  readonly prefetch?: PrefetchOptions
  readonly promptHook?: PromptHook
  /** Runs flow code for the hooks; default: one of this app's (with the Slack host handlers), closed with it. */
  readonly flows?: FlowRuntime
  /** Retries of failed Slack calls (tests make them quick). */
  readonly retryConfig?: { retries: number; factor?: number; minTimeout?: number; maxTimeout?: number }
}

export interface SlackRouteOptions {
  readonly options: SlackApiOptions
  readonly db: Db
  readonly runs: RunService
  /** BullMQ connection and prefix of the `slack` queue (the worker processes it). */
  readonly redis: Redis
  readonly queuePrefix: string
}

const BODY_LIMIT = 1 << 20
const hidden = { hide: true } as const

function parseSlackBody(req: FastifyRequest, body: Buffer): unknown {
  const text = body.toString('utf8')
  if (req.headers['content-type']?.startsWith('application/json')) return JSON.parse(text) as unknown
  const form = Object.fromEntries(new URLSearchParams(text))
  // Interactivity sends one field, `payload`, holding JSON.
  return typeof form.payload === 'string' ? { ...form, payload: JSON.parse(form.payload) as unknown } : form
}

const html = (title: string, message: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>`
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

export default async function slackRoutes(app: FastifyInstance, o: SlackRouteOptions): Promise<void> {
  const cfg = o.options
  const log: EngineLogger = app.log
  const cipher = TokenCipher.fromConfig(cfg.tokenKey)
  const installations = new Installations(o.db, cipher)
  const clients = new SlackClients({ ...(cfg.apiUrl ? { apiUrl: cfg.apiUrl } : {}), ...(cfg.retryConfig ? { retryConfig: cfg.retryConfig } : {}), logger: log })
  const queue = new SlackQueue({ connection: o.redis, prefix: o.queuePrefix })
  app.addHook('onClose', () => queue.close())
  let flows = cfg.flows
  if (!flows && !(cfg.flowsFilter && cfg.prefetch && cfg.promptHook)) {
    const runtime = new FlowRuntime({ db: o.db, host: createHostHandlers({ db: o.db, slack: createSlackHost({ db: o.db, installations, clients }) }), logger: log })
    app.addHook('onClose', () => runtime.close())
    flows = runtime
  }
  const flowsFilter = cfg.flowsFilter ?? (flows ? runtimeFlowsFilter(flows) : undefined)
  const prefetch = cfg.prefetch ?? (flows ? runtimePrefetch(o.db, flows) : undefined)
  const promptHook = cfg.promptHook ?? (flows ? runtimePromptHook(o.db, flows) : undefined)
  const handlers = new SlackHandlers({
    db: o.db,
    runs: o.runs,
    installations,
    clients,
    queue,
    logger: log,
    ...(flowsFilter ? { flowsFilter } : {}),
    ...(prefetch ? { prefetch } : {}),
    ...(promptHook ? { promptHook } : {}),
  })
  const publicUrl = cfg.publicUrl?.replace(/\/+$/, '')
  const oauth =
    cfg.clientId && cfg.clientSecret
      ? new SlackOAuth({
          db: o.db,
          installations,
          clients,
          cipher,
          clientId: cfg.clientId,
          clientSecret: cfg.clientSecret,
          redirectUri: `${publicUrl ?? ''}/api/v1/slack/oauth/callback`,
          ...(cfg.authorizeUrl ? { authorizeUrl: cfg.authorizeUrl } : {}),
        })
      : undefined
  const now = cfg.now ?? Date.now

  // Signed routes: raw bytes kept, parsed here (a parse error after a valid signature is a 400).
  await app.register(async (signed) => {
    signed.removeAllContentTypeParsers()
    signed.addContentTypeParser(['application/json', 'application/x-www-form-urlencoded'], { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (req, body, done) => {
      req.slackRawBody = body as Buffer
      done(null, body)
    })
    signed.addHook('preHandler', async (req, reply) => {
      const raw = req.slackRawBody
      const header = (name: string) => {
        const v = req.headers[name]
        return typeof v === 'string' ? v : undefined
      }
      const check = raw ? verifySlackSignature(cfg.signingSecret, { timestamp: header('x-slack-request-timestamp'), signature: header('x-slack-signature'), rawBody: raw }, now()) : { ok: false as const, reason: 'no body' }
      if (!check.ok) {
        req.log.info({ reason: check.reason }, 'slack request rejected')
        return reply.code(401).send({ error: 'invalid_signature', message: 'The request is not signed by Slack (or is too old).' })
      }
      try {
        req.body = parseSlackBody(req, raw!)
      } catch {
        return reply.code(400).send({ error: 'malformed_body', message: 'The body is not what Slack sends.' })
      }
    })

    const followUps = new WeakMap<FastifyRequest, () => Promise<void>>()
    // Deferred work runs once the acknowledgement is sent; failures are logged (Slack has its answer already).
    signed.addHook('onResponse', async (req) => {
      const after = followUps.get(req)
      if (after) after().catch((err: unknown) => req.log.warn({ err }, 'slack follow-up failed'))
    })
    const answer = async (reply: FastifyReply, req: FastifyRequest, result: SlackReply) => {
      if (result.after) followUps.set(req, result.after)
      reply.code(result.status)
      return result.body === undefined ? reply.send() : reply.send(result.body)
    }

    // Slack sends each command and interaction once (it retries Events API deliveries only): the same signature
    // again, while its timestamp is still accepted, is a captured request replayed, e.g. a form submitted twice.
    const firstDelivery = async (req: FastifyRequest) => {
      const key = `${o.queuePrefix}:slack:signature:${String(req.headers['x-slack-signature'])}`
      return (await o.redis.set(key, '1', 'EX', 2 * SLACK_REPLAY_WINDOW_SECONDS, 'NX')) === 'OK'
    }
    const replayed = (req: FastifyRequest, reply: FastifyReply) => {
      req.log.info('slack request rejected: replayed')
      return reply.code(401).send({ error: 'replayed_request', message: 'This request was received before; Slack sends each one once.' })
    }
    signed.post('/slack/commands', { schema: hidden }, async (req, reply) => ((await firstDelivery(req)) ? answer(reply, req, await handlers.command(req.body)) : replayed(req, reply)))
    signed.post('/slack/interactions', { schema: hidden }, async (req, reply) => ((await firstDelivery(req)) ? answer(reply, req, await handlers.interaction(req.body)) : replayed(req, reply)))
    signed.post('/slack/events', { schema: hidden }, async (req, reply) => {
      // Slack's ssl_check posts are unsigned and only ask whether we are here; they never reach this route signed.
      return answer(reply, req, await handlers.event(req.body))
    })
  })

  app.get('/slack/manifest', { schema: hidden }, async (req, reply) => {
    const base = publicUrl ?? `${req.protocol}://${req.host}`
    return reply.send(slackManifest({ publicUrl: base }))
  })

  app.get(
    '/slack/install',
    { schema: { ...hidden, querystring: Type.Object({ integration_id: Type.String({ format: 'uuid' }) }) } },
    async (req, reply) => {
      if (!oauth) return reply.code(503).type('text/html').send(html('Slack install unavailable', 'SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are not configured.'))
      const { integration_id } = req.query as { integration_id: string }
      const r = await oauth.authorizeUrl(integration_id)
      if (!r.ok) return reply.code(r.status).type('text/html').send(html('Cannot install', r.message))
      return reply.redirect(r.url, 302)
    },
  )

  app.get(
    '/slack/oauth/callback',
    { schema: { ...hidden, querystring: Type.Object({ code: Type.Optional(Type.String()), state: Type.Optional(Type.String()), error: Type.Optional(Type.String()) }) } },
    async (req, reply) => {
      if (!oauth) return reply.code(503).type('text/html').send(html('Slack install unavailable', 'SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are not configured.'))
      const r = await oauth.callback(req.query as { code?: string; state?: string; error?: string })
      if (!r.ok) return reply.code(r.status).type('text/html').send(html('Slack install failed', r.message))
      req.log.info({ teamId: r.teamId, orgId: r.orgId }, 'slack app installed')
      return reply.type('text/html').send(html('Sym is installed', `The Slack workspace ${r.teamId} is connected. You can close this page.`))
    },
  )
}
