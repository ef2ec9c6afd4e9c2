/**
 * The API as a Fastify plugin tree. `buildApp` takes its dependencies (config, PostgreSQL, Redis) so tests load
 * the very same app without a port; `server.ts` only listens and shuts down.
 */
import { randomUUID } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Db } from '@opensym/db'
import { EngineQueues, RunService } from '@opensym/engine'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Redis } from 'ioredis'
import type { ApiConfig } from './config.js'
import auth from './plugins/auth.js'
import dbPlugin from './plugins/db.js'
import errors from './plugins/errors.js'
import idempotency from './plugins/idempotency.js'
import metrics from './plugins/metrics.js'
import openapi from './plugins/swagger.js'
import tracing from './plugins/tracing.js'
import audit from './routes/audit.js'
import entities from './routes/entities.js'
import events from './routes/events.js'
import health from './routes/health.js'
import runs from './routes/runs.js'
import slackRoutes, { type SlackApiOptions } from './routes/slack.js'

export const REQUEST_ID_HEADER = 'x-sym-request-id'
/** Client-chosen request ids are echoed only when they are safe to log. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export interface AppDeps {
  readonly config: Pick<ApiConfig, 'logLevel'> & Partial<Pick<ApiConfig, 'queuePrefix' | 'requestExpirySeconds' | 'metricsEnabled'>>
  readonly db: Db
  readonly redis: Redis
  /** Where the Events API enqueues run steps. Default: BullMQ queues on `redis` under `config.queuePrefix`. */
  readonly queues?: EngineQueues
  /** The Slack app; default: from the SLACK_* configuration when the signing secret and token key are set. */
  readonly slack?: SlackApiOptions
  /** Overrides the logger (tests pass a silent or capturing one). */
  readonly logger?: FastifyServerOptions['loggerInstance']
}

/** A URL as logged: the values of OAuth's `code` and `state` replaced, so a log line never holds a usable grant. */
export function redactOAuthQuery(url: string): string {
  return url.replace(/([?&](?:code|state)=)[^&#]*/g, '$1[redacted]')
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.logger
      ? { loggerInstance: deps.logger }
      : {
          logger: {
            level: deps.config.logLevel,
            base: { service: 'api', pid: process.pid },
            redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.tokenSecret'], censor: '[redacted]' },
            serializers: {
              // Fastify's own fields, with the URL's OAuth `code`/`state` blanked (the Slack install callback).
              req: (req: { method: string; url: string; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
                method: req.method,
                url: redactOAuthQuery(req.url),
                host: req.host,
                remoteAddress: req.ip,
                remotePort: req.socket?.remotePort,
              }),
            },
          },
        }),
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    genReqId: (req) => {
      const given = req.headers[REQUEST_ID_HEADER]
      return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID()
    },
    bodyLimit: 1 << 20,
    ajv: { customOptions: { allErrors: true, removeAdditional: false, coerceTypes: false, useDefaults: false } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addHook('onRequest', async (req, reply) => {
    reply.header(REQUEST_ID_HEADER, req.id)
  })

  // Sym's provider sends the JSON body `null` on GET and DELETE; curl users send nothing at all. Accept both.
  const json = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '' || body === 'null') return done(null, undefined)
    void json(req, body as string, done)
  })

  // Before any route: it wraps route handlers as they are added.
  await app.register(tracing)
  await app.register(errors)
  await app.register(dbPlugin, { db: deps.db, redis: deps.redis })
  await app.register(openapi)
  await app.register(health)
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  // Queues open their Redis connection on first use, so building the app (e.g. for the OpenAPI document) needs none.
  const queues = deps.queues ?? new EngineQueues({ connection: deps.redis, prefix: deps.config.queuePrefix ?? 'opensym' })
  if (!deps.queues) app.addHook('onClose', () => queues.close())
  await app.register(metrics, { enabled: deps.config.metricsEnabled ?? true, db: deps.db, queues })
  const runService = new RunService({ db: deps.db, queues, logger: app.log, requestExpirySeconds: deps.config.requestExpirySeconds })
  await app.register(
    async (api) => {
      await api.register(auth)
      // Before the routes: it applies to every POST registered after it.
      await api.register(idempotency)
      await api.register(entities)
      await api.register(events, { service: runService })
      await api.register(runs, { service: runService })
      await api.register(audit)
    },
    { prefix: '/api/v1' },
  )
  const slack = deps.slack ?? slackOptionsFrom(deps.config)
  // Outside the bearer-authenticated context: Slack signs its requests instead.
  if (slack) await app.register(slackRoutes, { prefix: '/api/v1', options: slack, db: deps.db, runs: runService, redis: deps.redis, queuePrefix: queues.prefix })
  return app
}

function slackOptionsFrom(c: Partial<ApiConfig>): SlackApiOptions | undefined {
  if (!c.slackSigningSecret || !c.slackTokenKey) return undefined
  return {
    signingSecret: c.slackSigningSecret,
    tokenKey: c.slackTokenKey,
    ...(c.slackApiUrl ? { apiUrl: c.slackApiUrl } : {}),
    ...(c.slackClientId ? { clientId: c.slackClientId } : {}),
    ...(c.slackClientSecret ? { clientSecret: c.slackClientSecret } : {}),
    ...(c.publicUrl ? { publicUrl: c.publicUrl } : {}),
  }
}
