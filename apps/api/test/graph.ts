import { entityBodies } from '@opensym/testing'
import { ok, type Entity, type Harness } from './helpers.js'

export const bodies = entityBodies

export interface Graph {
  slack: Entity
  context: Entity
  runtime: Entity
  secretSource: Entity
  secret: Entity
  okta: Entity
  errorLogger: Entity
  firehose: Entity
  httpLog: Entity
  environment: Entity
  oktaTarget: Entity
  ssoTarget: Entity
  strategy: Entity
  flow: Entity
}

/** A realistic configuration: everything a Terraform apply of an Okta access flow creates, in dependency order. */
export async function createGraph(h: Harness, token = h.a.tokens.bot): Promise<Graph> {
  const post = (path: string, body: unknown) => ok(h, 'POST', `entities/${path}`, { token, body })
  const slack = await post('integrations', bodies.slack)
  const context = await post('integrations', bodies.context)
  const runtime = await post('runtimes', bodies.runtime(context.id))
  const secretSource = await post('secret-sources', bodies.secretSource(context.id))
  const secret = await post('secrets', bodies.secret(secretSource.id))
  const okta = await post('integrations', bodies.okta(secret.id))
  const errorLogger = await post('error-loggers', bodies.errorLogger(slack.id))
  const firehose = await post('log-destinations', bodies.firehose(context.id))
  const httpLog = await post('log-destinations', bodies.httpLog)
  const environment = await post(
    'environments',
    bodies.environment({ runtime: runtime.id, slack: slack.id, okta: okta.id, errorLogger: errorLogger.id, logs: [firehose.id, httpLog.id] }),
  )
  const oktaTarget = await post('access-targets', bodies.oktaTarget)
  const ssoTarget = await post('access-targets', bodies.ssoTarget)
  const strategy = await post('access-strategies', bodies.strategy(okta.id, [oktaTarget.id]))
  const flow = await post('flows', bodies.flow(environment.id, strategy.id))
  return { slack, context, runtime, secretSource, secret, okta, errorLogger, firehose, httpLog, environment, oktaTarget, ssoTarget, strategy, flow }
}
