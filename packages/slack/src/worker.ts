/**
 * The Slack app's worker side, in one piece: the engine's RunNotifier (cards, DMs), its ErrorReporter (the
 * error-logger channel, also logged), its SlackHost (`slack.*` calls from flow code), and the `slack` queue's worker
 * (refusals told privately).
 */
import type { Db } from '@opensym/db'
import { logReporter, type EngineLogger, type ErrorReporter, type RunNotifier, type SlackHost } from '@opensym/engine'
import type { Redis } from 'ioredis'
import { SlackClients } from './client.js'
import { TokenCipher } from './crypto.js'
import { createSlackHost } from './host.js'
import { Installations } from './installations.js'
import { SlackNotifier } from './notifier.js'
import { startSlackWorker } from './queue.js'
import { slackErrorReporter } from './reporter.js'

export interface SlackAppOptions {
  readonly db: Db
  /** BullMQ connection (no keyPrefix, maxRetriesPerRequest null) and the queue prefix shared with the API. */
  readonly connection: Redis
  readonly prefix: string
  /** SLACK_TOKEN_KEY. */
  readonly tokenKey: string
  /** SLACK_API_URL; default Slack's. */
  readonly apiUrl?: string
  readonly logger: EngineLogger
}

export interface SlackApp {
  readonly notifier: RunNotifier
  readonly reporter: ErrorReporter
  /** For the FlowRuntime's host handlers: `createHostHandlers({ db, slack: app.host })`. */
  readonly host: SlackHost
  close(): Promise<void>
}

export function startSlackApp(o: SlackAppOptions): SlackApp {
  const installations = new Installations(o.db, TokenCipher.fromConfig(o.tokenKey))
  const clients = new SlackClients({ ...(o.apiUrl ? { apiUrl: o.apiUrl } : {}), logger: o.logger })
  const notifier = new SlackNotifier({ db: o.db, installations, clients, logger: o.logger })
  const toSlack = slackErrorReporter({ db: o.db, installations, clients, logger: o.logger })
  const toLog = logReporter(o.logger)
  const queue = startSlackWorker({ connection: o.connection, prefix: o.prefix, installations, clients, logger: o.logger })
  return {
    notifier,
    host: createSlackHost({ db: o.db, installations, clients }),
    reporter: async (f) => {
      await toLog(f)
      await toSlack(f)
    },
    close: () => queue.close(),
  }
}
