/**
 * The platform's side of the SDK's integration calls (`@opensym/sdk` `HostCalls`), made with the flow's
 * environment integrations (`event.flow.environment.integrations`): Okta group checks, PagerDuty on-call, AWS Lambda
 * invokes, `sym_secret` values, event counts. Slack calls are the Slack app's ({@link SlackHost}); the worker
 * composes them in with `createHostHandlers({ slack })`.
 *
 * Every argument comes from user code: a handler only reaches what the flow's environment names (a secret must be
 * one of its integrations' secrets; a call goes to the environment's integration of that type), and its errors never
 * carry secret values.
 */
import type { Db } from '@opensym/db'
import type { HostCallContext, HostHandlers as SandboxHostHandlers } from '@opensym/sandbox'
import type { EventData, HostArgs, HostResult, IntegrationData, JsonObject, JsonValue, UserData, UserRefData } from '@opensym/sdk/flow'
import { Aws, awsSdk, permissionContext } from './aws.js'
import type { HostContext } from './runtime.js'
import { userData } from './runtime.js'
import { guardedFetch, outboundBlocked, outboundPolicyFromEnv, readTextLimited, unsendableHeader, type OutboundPolicy } from './outbound.js'
import { createSecretResolver } from './secrets.js'
import type { SecretResolver } from './strategy.js'
import { USER_WITH_IDENTITIES } from './runtime.js'

/** Handlers of SDK integration calls, as the sandbox takes them. */
export type HostHandlers = SandboxHostHandlers<HostContext>

type SlackMethod = Extract<keyof HostHandlers, `slack.${string}`>
/**
 * What the Slack app provides for `slack.*` calls from hooks (send a message, a thread reply, look users up). The
 * context says which org, flow, run and event the call is for; the workspace is the environment's `slack` integration
 * (`context.event.flow.environment.integrations.slack`).
 */
export type SlackHost = Pick<HostHandlers, SlackMethod>

export interface HostHandlersOptions {
  readonly db: Db
  /** `secrets.retrieve` and integration tokens. Default: `createSecretResolver` per org (env sources). */
  readonly secrets?: (orgId: string) => SecretResolver
  /** The Slack app's handlers; without them `slack.*` calls fail `not_available`. */
  readonly slack?: SlackHost
  /** AWS clients for `awsLambda.*`. Default: a new `Aws()`. */
  readonly aws?: Aws
  /** Okta API base URL (tests: the fake's). Default `https://<integration external_id>`. */
  readonly oktaBaseUrl?: string
  /** PagerDuty API base URL. Default `https://api.pagerduty.com`. */
  readonly pagerdutyBaseUrl?: string
  /** Calls to the base URLs above (operator-configured). Default: the global `fetch`. */
  readonly fetch?: typeof fetch
  /**
   * Which addresses calls to URLs taken from org data (an okta integration's `external_id`) may reach. Default:
   * `OPENSYM_ALLOW_PRIVATE_NETWORKS` (link-local/metadata never, private ones only when allowed).
   */
  readonly network?: OutboundPolicy
}

/** Largest integration API answer read (a page of users or groups is far smaller). */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024

/** An integration call that cannot be made; its message reaches the flow as an `IntegrationError`. */
export class HostCallError extends Error {
  override readonly name = 'HostCallError'
  constructor(
    message: string,
    readonly code = 'failed',
  ) {
    super(message)
  }
}

type Ctx = HostCallContext<HostContext>

/** The environment's integration of this type (by name first: `okta_id` → `okta`). */
function integrationOf(event: EventData, type: string): IntegrationData {
  const all = event.flow.environment.integrations
  const found = all[type]?.type === type ? all[type] : Object.values(all).find((i) => i.type === type)
  if (!found) throw new HostCallError(`the flow's environment has no ${type} integration (add ${type}_id to sym_environment.integrations)`, 'not_configured')
  return found
}

/** A secret-valued setting's `sym_secret` id. */
function secretIdOf(integration: IntegrationData, setting: string): string {
  const v = integration.settings[setting]
  if (v && typeof v === 'object' && !Array.isArray(v) && '$secret' in v) return v.$secret
  throw new HostCallError(`the ${integration.type} integration has no ${setting} (a sym_secret)`, 'not_configured')
}

/** Every `sym_secret` the environment's integrations reference: the only ones a flow may read. */
function environmentSecrets(event: EventData): Set<string> {
  const ids = new Set<string>()
  for (const i of Object.values(event.flow.environment.integrations)) {
    for (const v of Object.values(i.settings)) {
      if (Array.isArray(v)) for (const s of v) ids.add(s.$secret)
      else if (v && typeof v === 'object' && '$secret' in v) ids.add(v.$secret)
    }
  }
  return ids
}

function contextOf(ctx: Ctx): HostContext {
  if (!ctx.context) throw new HostCallError('integration calls need the engine context', 'internal')
  return ctx.context
}

const USER_SELECT = USER_WITH_IDENTITIES

export function createHostHandlers(o: HostHandlersOptions): HostHandlers {
  const doFetch = o.fetch ?? fetch
  // An org admin chooses the okta integration's external_id: without an operator base URL it is fetched guarded.
  const orgFetch = o.fetch ?? guardedFetch(o.network ?? outboundPolicyFromEnv())
  const secretsOf = o.secrets ?? ((orgId: string) => createSecretResolver({ db: o.db.sql, orgId }))
  let aws = o.aws
  const pagerdutyBase = (o.pagerdutyBaseUrl ?? 'https://api.pagerduty.com').replace(/\/+$/, '')

  const secret = (ctx: Ctx, integration: IntegrationData, setting: string) => secretsOf(contextOf(ctx).orgId)(secretIdOf(integration, setting))

  /** The stored identity of a platform user in a service, or their email to look them up by. */
  async function identityOrEmail(ctx: Ctx, user: UserRefData, service: string, serviceId: string): Promise<{ id?: string; email?: string }> {
    if (typeof user === 'string') return user.includes('@') ? { email: user } : { id: user }
    const stored = await o.db.userIdentity.findFirst({ where: { orgId: contextOf(ctx).orgId, userId: user.id, service, serviceId }, select: { externalUserId: true } })
    if (stored) return { id: stored.externalUserId }
    if (!user.email) throw new HostCallError(`the user ${user.id} has no email to find them in ${service} by`, 'not_found')
    return { email: user.email }
  }

  /** Platform users of the org with these emails (others are left out: they are not users of the org). */
  async function usersByEmail(ctx: Ctx, emails: readonly string[]): Promise<UserData[]> {
    const rows = await o.db.user.findMany({ where: { orgId: contextOf(ctx).orgId, email: { in: emails.map((e) => e.toLowerCase()) }, deactivatedAt: null }, select: USER_SELECT })
    return rows.map(userData)
  }

  async function getJson(url: string, headers: Record<string, string>, ctx: Ctx, what: string, send: typeof fetch = doFetch): Promise<{ status: number; body: unknown; link: string | null }> {
    // The headers carry the API token: a value fetch refuses would be quoted in its error, so name the header only.
    const bad = unsendableHeader(headers)
    if (bad !== undefined) throw new HostCallError(`${what}: the ${bad} header (from the integration's secret) has a control character in it`, 'not_configured')
    let res: Response
    try {
      res = await send(url, { headers: { accept: 'application/json', ...headers }, signal: ctx.signal, redirect: 'manual' })
    } catch (e) {
      const blocked = outboundBlocked(e)
      if (blocked) throw new HostCallError(`${what}: ${blocked.message}`, 'forbidden')
      throw new HostCallError(`${what}: ${e instanceof Error ? e.message : String(e)}`, 'unavailable')
    }
    let text: string
    try {
      text = await readTextLimited(res, MAX_ANSWER_BYTES)
    } catch (e) {
      throw new HostCallError(`${what}: ${e instanceof Error ? e.message : String(e)}`, 'too_large')
    }
    let body: unknown
    try {
      body = text ? JSON.parse(text) : undefined
    } catch {
      body = undefined
    }
    if (res.status === 404) return { status: 404, body, link: null }
    if (res.status < 200 || res.status >= 300) {
      const summary = (body as { errorSummary?: string; error?: { message?: string } } | undefined)
      throw new HostCallError(`${what}: HTTP ${res.status}${summary?.errorSummary ? ` ${summary.errorSummary}` : summary?.error?.message ? ` ${summary.error.message}` : ''}`, res.status === 429 ? 'rate_limited' : 'failed')
    }
    return { status: res.status, body, link: res.headers.get('link') }
  }

  // --- Okta -----------------------------------------------------------------------------------------------------

  async function okta(ctx: Ctx) {
    const integration = integrationOf(ctx.event, 'okta')
    const token = await secret(ctx, integration, 'api_token_secret')
    const base = (o.oktaBaseUrl ?? (/^https?:\/\//.test(integration.externalId) ? integration.externalId : `https://${integration.externalId}`)).replace(/\/+$/, '')
    const headers = { authorization: `SSWS ${token}` }
    const origin = URL.canParse(base) ? new URL(base).origin : undefined
    if (!origin) throw new HostCallError(`the okta integration's external_id is not a domain or URL`, 'not_configured')
    const send = o.oktaBaseUrl ? doFetch : orgFetch
    const get = async (path: string) => {
      const url = path.startsWith('http') ? path : `${base}${path}`
      // A `Link: rel="next"` URL comes from the answer: the API token only ever goes to the integration's origin.
      const to = URL.canParse(url) ? new URL(url).origin : 'an invalid URL'
      if (to !== origin) throw new HostCallError(`okta: refusing to follow a link to another origin (${to})`, 'forbidden')
      return getJson(url, headers, ctx, `okta GET ${path.replace(/^https?:\/\/[^/]+/, '').split('?')[0]}`, send)
    }
    const userId = async (user: UserRefData): Promise<string | undefined> => {
      const ref = await identityOrEmail(ctx, user, 'okta', integration.externalId)
      if (ref.id) return ref.id
      const r = await get(`/api/v1/users?search=${encodeURIComponent(`profile.email eq "${ref.email}"`)}`)
      const found = Array.isArray(r.body) ? (r.body as Array<{ id: string }>) : []
      return found[0]?.id
    }
    /** Every member of a group, following `Link: rel="next"`. */
    const members = async (groupId: string): Promise<Array<{ id: string; profile?: { email?: string } }>> => {
      const out: Array<{ id: string; profile?: { email?: string } }> = []
      let url: string | undefined = `/api/v1/groups/${encodeURIComponent(groupId)}/users?limit=200`
      for (let pages = 0; url && pages < 100; pages++) {
        const r = await get(url)
        if (r.status === 404) throw new HostCallError(`okta: no group ${groupId}`, 'not_found')
        out.push(...((r.body as typeof out | undefined) ?? []))
        url = /<([^>]+)>;\s*rel="next"/.exec(r.link ?? '')?.[1]
      }
      return out
    }
    return { get, userId, members }
  }

  // --- PagerDuty ------------------------------------------------------------------------------------------------

  async function pagerduty(ctx: Ctx) {
    const integration = integrationOf(ctx.event, 'pagerduty')
    const token = await secret(ctx, integration, 'api_token_secret')
    const headers = { authorization: `Token token=${token}`, accept: 'application/vnd.pagerduty+json;version=2' }
    const get = (path: string) => getJson(`${pagerdutyBase}${path}`, headers, ctx, `pagerduty GET ${path.split('?')[0]}`)
    const userId = async (user: UserRefData): Promise<string | undefined> => {
      const ref = await identityOrEmail(ctx, user, 'pagerduty', integration.externalId)
      if (ref.id) return ref.id
      const r = await get(`/users?query=${encodeURIComponent(ref.email!)}`)
      const users = ((r.body as { users?: Array<{ id: string; email?: string }> } | undefined)?.users ?? [])
      // `query` also matches names: only an exact email match is the user.
      return users.find((u) => u.email?.toLowerCase() === ref.email!.toLowerCase())?.id
    }
    return { get, userId }
  }

  const handlers: HostHandlers = {
    'secrets.retrieve': async ({ secretId }: HostArgs<'secrets.retrieve'>, ctx: Ctx): Promise<HostResult<'secrets.retrieve'>> => {
      // Only secrets the flow's environment hands it (an integration's secret settings), never any of the org's.
      if (!environmentSecrets(ctx.event).has(secretId)) throw new HostCallError(`sym_secret ${secretId} is not a secret of this flow's environment integrations`, 'forbidden')
      return secretsOf(contextOf(ctx).orgId)(secretId)
    },

    'users.getEventCount': async (args: HostArgs<'users.getEventCount'>, ctx: Ctx): Promise<number> => {
      const c = contextOf(ctx)
      const userId = typeof args.user === 'string' ? (await o.db.user.findFirst({ where: { orgId: c.orgId, OR: [{ id: /^[0-9a-f-]{36}$/i.test(args.user) ? args.user : undefined }, { email: args.user.toLowerCase() }] }, select: { id: true } }))?.id : args.user.id
      if (!userId) return 0
      const targetId = ctx.event.payload.fields.target_id
      return o.db.runEvent.count({
        where: {
          orgId: c.orgId,
          actorId: userId,
          name: args.eventName,
          status: args.includeErrored ? { in: ['success', 'error'] } : 'success',
          ...(args.since || args.until ? { createdAt: { ...(args.since ? { gte: new Date(args.since) } : {}), ...(args.until ? { lte: new Date(args.until) } : {}) } } : {}),
          run: args.filterOn === 'target' ? { targetId: typeof targetId === 'string' ? targetId : null } : { flowId: c.flowId },
        },
      })
    },

    'okta.isUserInGroup': async ({ user, groupId }: HostArgs<'okta.isUserInGroup'>, ctx: Ctx): Promise<boolean> => {
      const api = await okta(ctx)
      const id = await api.userId(user)
      if (!id) return false
      return (await api.members(groupId)).some((m) => m.id === id)
    },

    'okta.usersInGroup': async ({ groupId }: HostArgs<'okta.usersInGroup'>, ctx: Ctx): Promise<UserData[]> => {
      const api = await okta(ctx)
      const emails = (await api.members(groupId)).map((m) => m.profile?.email).filter((e): e is string => typeof e === 'string')
      return usersByEmail(ctx, emails)
    },

    'okta.getUserInfo': async ({ user }: HostArgs<'okta.getUserInfo'>, ctx: Ctx): Promise<JsonObject> => {
      const api = await okta(ctx)
      const id = await api.userId(user)
      if (!id) throw new HostCallError('okta: no such user', 'not_found')
      const r = await api.get(`/api/v1/users/${encodeURIComponent(id)}`)
      if (r.status === 404) throw new HostCallError('okta: no such user', 'not_found')
      return r.body as JsonObject
    },

    'pagerduty.isOnCall': async ({ user, scheduleId, scheduleName }: HostArgs<'pagerduty.isOnCall'>, ctx: Ctx): Promise<boolean> => {
      const api = await pagerduty(ctx)
      const id = await api.userId(user)
      if (!id) return false
      let schedule = scheduleId
      if (!schedule && scheduleName) {
        const r = await api.get(`/schedules?query=${encodeURIComponent(scheduleName)}`)
        const found = ((r.body as { schedules?: Array<{ id: string; name?: string }> } | undefined)?.schedules ?? []).find((s) => s.name?.toLowerCase() === scheduleName.toLowerCase())
        if (!found) throw new HostCallError(`pagerduty: no schedule named "${scheduleName}"`, 'not_found')
        schedule = found.id
      }
      const query = `user_ids[]=${encodeURIComponent(id)}${schedule ? `&schedule_ids[]=${encodeURIComponent(schedule)}` : ''}&earliest=true`
      const r = await api.get(`/oncalls?${query}`)
      return ((r.body as { oncalls?: unknown[] } | undefined)?.oncalls ?? []).length > 0
    },

    'pagerduty.getIncidents': async ({ statuses }: HostArgs<'pagerduty.getIncidents'>, ctx: Ctx): Promise<JsonObject[]> => {
      const api = await pagerduty(ctx)
      const query = (statuses ?? ['triggered', 'acknowledged']).map((s) => `statuses[]=${encodeURIComponent(s)}`).join('&')
      const r = await api.get(`/incidents?${query}`)
      return ((r.body as { incidents?: JsonObject[] } | undefined)?.incidents ?? [])
    },

    'awsLambda.invoke': async ({ arn, payload }: HostArgs<'awsLambda.invoke'>, ctx: Ctx): Promise<JsonValue> => lambdaInvoke(ctx, arn, payload, 'RequestResponse'),

    'awsLambda.invokeAsync': async ({ arn, payload }: HostArgs<'awsLambda.invokeAsync'>, ctx: Ctx): Promise<null> => {
      await lambdaInvoke(ctx, arn, payload, 'Event')
      return null
    },

    ...(o.slack ?? {}),
  }

  /** Invokes a function through the environment's `aws_lambda` (permission_context) integration. */
  async function lambdaInvoke(ctx: Ctx, arn: string, payload: JsonValue, type: 'RequestResponse' | 'Event'): Promise<JsonValue> {
    const all = ctx.event.flow.environment.integrations
    const integration = all.aws_lambda ?? Object.values(all).find((i) => i.type === 'permission_context')
    if (!integration) throw new HostCallError("the flow's environment has no aws_lambda integration (add aws_lambda_id to sym_environment.integrations)", 'not_configured')
    // The integration's account bounds which functions a flow may call.
    const account = /^arn:aws[\w-]*:lambda:[\w-]+:(\d{12}):function:/.exec(arn)?.[1]
    if (!account) throw new HostCallError(`"${arn}" is not a Lambda function ARN`, 'invalid_arguments')
    if (integration.externalId && /^\d{12}$/.test(integration.externalId) && integration.externalId !== account) {
      throw new HostCallError(`function ${arn} is not in the aws_lambda integration's account ${integration.externalId}`, 'forbidden')
    }
    aws ??= new Aws()
    const settings: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(integration.settings)) if (typeof v === 'string') settings[k] = v
    const { InvokeCommand } = await awsSdk.lambda()
    const lambda = await aws.clients(permissionContext(settings, `aws_lambda integration ${integration.externalId}`, aws.defaultRegion)).lambda()
    let out
    try {
      out = await lambda.send(new InvokeCommand({ FunctionName: arn, InvocationType: type, Payload: Buffer.from(JSON.stringify(payload)) }), { abortSignal: ctx.signal })
    } catch (e) {
      throw new HostCallError(`lambda Invoke ${arn}: ${e instanceof Error ? e.message : String(e)}`, 'failed')
    }
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : ''
    if (out.FunctionError) throw new HostCallError(`lambda ${arn}: the function failed (${out.FunctionError}): ${text.slice(0, 300)}`, 'function_error')
    if (type === 'Event' || !text) return null
    try {
      return JSON.parse(text) as JsonValue
    } catch {
      return text
    }
  }

  return handlers
}
