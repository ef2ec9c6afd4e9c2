/**
 * Running a flow's implementation (its `sym_flow.implementation`, TypeScript with @opensym/sdk) for the engine:
 * `on…`/`after…` hooks around each step, the routing reducers (`getPermissions`, `getRequestNotifications`, legacy
 * `getApprovers`), `getIdentity`, and prefetch reducers for the Slack app. Calls go through @opensym/sandbox
 * (isolated-vm), loaded on first use so processes that never run flow code (the API) never load it; the process
 * must run Node with `--no-node-snapshot`.
 *
 * The flow's source is the run's snapshot (`snapshot.flow.implementation`, kept so a run finishes with the code it
 * started with), else the Flow row when it is still at the run's version. The sandbox compiles each flow version
 * once (`flowId@version`). A Python implementation (Sym's impl.py) cannot run: such a flow behaves with the
 * defaults and its requests carry a warning saying so.
 */
import type { Db, Run, RunEvent } from '@opensym/db'
import { srns } from '@opensym/domain'
import type * as SandboxNamespace from '@opensym/sandbox'
import type { LoadedFlow, Sandbox, SandboxOptions, SandboxFailure } from '@opensym/sandbox'
import type { ChannelData, DestinationData, EventData, FieldOptionData, FlowInfo, HookResult, IntegrationData, IntegrationSettingData, JsonObject, JsonValue, NotificationData, RequestPermissionData, StepName, UserData } from '@opensym/sdk/flow'
import type { HostHandlers } from './host.js'
import type { IdentityReducer } from './identities.js'
import { silentLogger, type EngineLogger } from './seams.js'
import type { RunSnapshot } from './snapshot.js'
import { readSnapshot } from './flows.js'
import { instrumentSandbox } from '@opensym/metrics'

/** What integration handlers are told about the call they serve (`HostCallContext.context`). */
export interface HostContext {
  readonly orgId: string
  readonly flowId: string
  readonly environmentId: string | null
  /** Null for prefetch reducers (no run yet). */
  readonly runId: string | null
  readonly eventId: string | null
}

export interface FlowRuntimeOptions {
  readonly db: Db
  /** Integration call handlers (host.ts `createHostHandlers`). Default: none (every call fails `not_available`). */
  readonly host?: HostHandlers
  /** Per call. Default 1000 ms (the sandbox's). */
  readonly timeoutMs?: number
  /** Per call. Default 64 MB. */
  readonly memoryLimitMb?: number
  readonly logger?: EngineLogger
  /** A sandbox made elsewhere (tests); default: one created on first use with the options above. */
  readonly sandbox?: Sandbox<HostContext>
}

/** A flow's implementation could not be used: recorded on the event, reported, and the step fails safely. */
export interface FlowFailure {
  readonly ok: false
  readonly message: string
  readonly kind: SandboxFailure['kind']
}

/** A hook's answer, or why there is none. `logs` are the `console` lines of the call. */
export type HookOutcome = { readonly ok: true; readonly reply: HookResult; readonly defined: boolean } | FlowFailure

/** Where a request goes and who may decide it. */
export interface Routing {
  readonly permission: RequestPermissionData
  readonly notifications: readonly NotificationData[]
  /** How they were found, for the log: the reducers, legacy getApprovers, or the defaults. */
  readonly source: 'reducers' | 'legacy' | 'default'
}

/** Sym's default when no reducer says (§3.6): admins decide, nobody approves their own request. */
export const DEFAULT_PERMISSION_DATA: RequestPermissionData = { webappView: 'admin', approveDeny: 'admin', allowSelfApproval: false }

/** The channel a request goes to when the flow does not say: the flow var `request_channel`, else this. */
export const DEFAULT_REQUEST_CHANNEL = '#sym-requests'

/**
 * The notification chain of a flow without `getRequestNotifications` (or legacy `getApprovers`): one link, to the
 * flow var `request_channel` (the examples' convention) or `#sym-requests`, waiting until the request's default
 * expiry.
 */
export function defaultNotifications(vars: Readonly<Record<string, string>>): NotificationData[] {
  const channel = vars.request_channel?.trim() || DEFAULT_REQUEST_CHANNEL
  return [{ destinations: [{ type: 'slack_channel', channel } satisfies DestinationData], timeout: null }]
}

type SandboxModule = typeof SandboxNamespace

/** Who is about to request (prefetch, prompt hooks): a user of the flow's org, and where they are. */
export interface PromptCaller {
  readonly userId: string
  readonly channel?: ChannelData
}

/** A flow version ready to call, or why it is not. `python`: stored, not runnable; the flow uses the defaults. */
type Loaded = { readonly kind: 'flow'; readonly flow: LoadedFlow<HostContext> } | { readonly kind: 'python'; readonly message: string } | { readonly kind: 'failed'; readonly failure: FlowFailure }

const CHANNELS: Readonly<Record<string, ChannelData['type']>> = { slack: 'slack', api: 'sym', sdk: 'sdk', internal: 'internal' }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {})

/** The user columns an event needs, with identities. */
export const USER_WITH_IDENTITIES = {
  id: true,
  email: true,
  username: true,
  firstName: true,
  lastName: true,
  type: true,
  role: true,
  identities: { select: { service: true, serviceId: true, externalUserId: true } },
} as const

type UserWithIdentities = {
  id: string
  email: string | null
  username: string
  firstName: string | null
  lastName: string | null
  type: 'normal' | 'bot'
  role: 'admin' | 'member' | 'guest'
  identities: Array<{ service: string; serviceId: string; externalUserId: string }>
}

export function userData(u: UserWithIdentities): UserData {
  return {
    id: u.id,
    email: u.email,
    username: u.username,
    firstName: u.firstName,
    lastName: u.lastName,
    type: u.type,
    role: u.role,
    identities: u.identities.map((i) => ({ service: i.service, serviceId: i.serviceId, userId: i.externalUserId })),
  }
}

/**
 * An integration's settings as a flow sees them: secret-valued settings (`…_secret`, `client_secret`, holding a
 * `sym_secret` id) become `{ $secret: id }` — the value is fetched only through `secrets.retrieve` — and a `custom`
 * integration's `secret_ids_json` becomes `secrets`, a list of them (§3.5).
 */
export function integrationSettings(settings: unknown): Record<string, IntegrationSettingData> {
  const out: Record<string, IntegrationSettingData> = {}
  for (const [k, v] of Object.entries(asRecord(settings))) {
    if (k === 'secret_ids_json') {
      let ids: unknown
      try {
        ids = typeof v === 'string' ? JSON.parse(v) : v
      } catch {
        ids = []
      }
      out.secrets = Array.isArray(ids) ? ids.filter((i): i is string => typeof i === 'string').map((id) => ({ $secret: id })) : []
      continue
    }
    const text = typeof v === 'string' ? v : JSON.stringify(v)
    out[k] = (k.endsWith('_secret') || k === 'client_secret') && UUID.test(text) ? { $secret: text } : text
  }
  return out
}

/** `slack_id` (an environment's integrations key) → `slack` (the name flows use). */
const integrationName = (key: string) => key.replace(/_id$/, '')

export class FlowRuntime {
  private readonly db: Db
  private readonly logger: EngineLogger
  private sandboxPromise: Promise<Sandbox<HostContext>> | undefined
  private modulePromise: Promise<SandboxModule> | undefined

  constructor(private readonly options: FlowRuntimeOptions) {
    this.db = options.db
    this.logger = options.logger ?? silentLogger
    if (options.sandbox) this.sandboxPromise = Promise.resolve(options.sandbox)
  }

  private module(): Promise<SandboxModule> {
    // Loaded on first use: isolated-vm needs --no-node-snapshot, which only the worker runs with.
    return (this.modulePromise ??= import('@opensym/sandbox'))
  }

  private sandbox(): Promise<Sandbox<HostContext>> {
    return (this.sandboxPromise ??= this.module().then((m) => {
      const o: SandboxOptions<HostContext> = {
        ...(this.options.timeoutMs !== undefined ? { timeoutMs: this.options.timeoutMs } : {}),
        ...(this.options.memoryLimitMb !== undefined ? { memoryLimitMb: this.options.memoryLimitMb } : {}),
        ...(this.options.host ? { host: this.options.host } : {}),
        onCatastrophicError: (message) => this.logger.error({ message }, 'isolated-vm lost control of an isolate; restart the worker'),
      }
      // Timed per load and call, and counted by failure kind, on /metrics (@opensym/metrics).
      return instrumentSandbox(m.createSandbox<HostContext>(o))
    }))
  }

  /** Compiles (once per flow version) and sets up a flow's implementation. */
  async load(flowId: string, version: number, source: string): Promise<Loaded> {
    const loaded = await (await this.sandbox()).load({ flowId, version }, source)
    if (loaded.ok) return { kind: 'flow', flow: loaded.flow }
    if (loaded.error.kind === 'unsupported_language') return { kind: 'python', message: loaded.error.message }
    return { kind: 'failed', failure: { ok: false, kind: loaded.error.kind, message: `the flow's implementation cannot run: ${loaded.error.message}` } }
  }

  /** Everything a step's hooks and reducers need about one event of a run, read once. */
  async forEvent(eventId: string): Promise<EventCall> {
    const event = await this.db.runEvent.findUniqueOrThrow({ where: { id: eventId } })
    const run = await this.db.run.findUniqueOrThrow({ where: { id: event.runId } })
    const snapshot = readSnapshot(run.snapshot)
    const [loaded, data] = await Promise.all([this.loadForRun(run, snapshot), this.eventData(run, snapshot, event)])
    return new EventCall(this, loaded, data, { orgId: run.orgId, flowId: snapshot.flow.id, environmentId: run.environmentId, runId: run.id, eventId: event.id }, snapshot)
  }

  /** The source the run started with: its snapshot's, else the Flow row's while still at the run's version. */
  private async loadForRun(run: Run, snapshot: RunSnapshot): Promise<Loaded | undefined> {
    let source = snapshot.flow.implementation
    if (source === undefined && run.flowId) {
      const flow = await this.db.flow.findUnique({ where: { id: run.flowId }, select: { implementation: true, version: true } })
      if (flow && flow.version === run.flowVersion) source = flow.implementation
    }
    if (source === undefined) return undefined
    return this.load(snapshot.flow.id, snapshot.flow.version, source)
  }

  /** The SDK's `EventData` for an event of a run (§3.5): fields, actors, contexts, step outputs, environment. */
  private async eventData(run: Run, snapshot: RunSnapshot, event: RunEvent): Promise<EventData> {
    const events = await this.db.runEvent.findMany({ where: { runId: run.id, seq: { lte: event.seq } }, orderBy: { seq: 'asc' } })
    const userIds = new Set<string>([run.requesterId])
    for (const e of events) if (e.actorId) userIds.add(e.actorId)
    const [users, integrations] = await Promise.all([
      this.db.user.findMany({ where: { id: { in: [...userIds] } }, select: USER_WITH_IDENTITIES }),
      this.environmentIntegrations(run.environmentId ?? snapshot.flow.environmentId),
    ])
    const byId = new Map(users.map((u) => [u.id, userData(u)]))
    const requester = byId.get(run.requesterId)!
    const actors: Record<string, UserData> = { request: requester }
    const stepOutputs: Record<string, JsonValue> = {}
    for (const e of events) {
      const actor = e.actorId ? byId.get(e.actorId) : undefined
      if (actor && e.name !== 'request' && (e.status === 'success' || e.id === event.id)) actors[e.name] = actor
      if ((e.name === 'escalate' || e.name === 'deescalate') && e.output !== null && e.status !== 'pending') stepOutputs[e.name] = e.output as JsonValue
    }
    const first = events[0]
    const orgSlug = snapshot.orgSlug
    const target = snapshot.target
    const fields: JsonObject = {
      ...(asRecord(run.fields) as JsonObject),
      ...(target
        ? {
            target: { name: target.slug, label: target.label, type: target.type, srn: srns.target(orgSlug, target.type, target.slug, target.id), settings: { ...target.settings } },
            target_id: target.id,
          }
        : {}),
      ...(run.durationSeconds !== null ? { duration: run.durationSeconds } : {}),
      ...(event.name !== 'request' ? (asRecord(event.fields) as JsonObject) : {}),
    }
    return {
      name: event.name as StepName,
      id: event.id,
      srn: `${srns.run(orgSlug, run.flowSlug, run.flowVersion, run.id)}:${event.name}:${event.seq}`,
      timestamp: event.createdAt.toISOString(),
      user: (event.actorId ? byId.get(event.actorId) : undefined) ?? actors.approve ?? requester,
      channel: { type: CHANNELS[event.channel] ?? 'internal', identifier: null },
      payload: { fields },
      flow: {
        name: snapshot.flow.slug,
        srn: srns.flow(orgSlug, snapshot.flow.slug, snapshot.flow.version),
        vars: { ...snapshot.flow.vars },
        environment: { name: snapshot.flow.environmentSlug, integrations },
      },
      run: {
        id: run.id,
        srn: srns.run(orgSlug, run.flowSlug, run.flowVersion, run.id),
        actors,
        contexts: { request: asRecord(run.context) as JsonObject },
        stepOutputs,
        sourceChannel: first ? { type: CHANNELS[first.channel] ?? 'internal', identifier: null } : null,
      },
    }
  }

  async environmentIntegrations(environmentId: string): Promise<Record<string, IntegrationData>> {
    const rows = await this.db.environmentIntegration.findMany({ where: { environmentId }, include: { integration: { select: { type: true, externalId: true, settings: true } } } })
    const out: Record<string, IntegrationData> = {}
    for (const r of rows) out[integrationName(r.key)] = { type: r.integration.type, externalId: r.integration.externalId, settings: integrationSettings(r.integration.settings) }
    return out
  }

  /** The `getIdentity` seam of identities.ts: the flow's reducer, called with the run's current escalate event. */
  readonly getIdentity: IdentityReducer = async (request) => {
    const event = await this.db.runEvent.findFirst({ where: { runId: request.runId, name: 'escalate' }, orderBy: { seq: 'desc' }, select: { id: true } })
    if (!event) return undefined
    const call = await this.forEvent(event.id)
    if (!call.flow) return undefined
    const user = await this.db.user.findUnique({ where: { id: request.user.userId }, select: USER_WITH_IDENTITIES })
    if (!user) return undefined
    if (!call.flow.has('getIdentity')) return undefined
    const r = await call.flow.callIdentity(call.data, { service: request.service, externalId: request.serviceId, user: userData(user) }, { context: call.context })
    if (!r.ok) {
      // A failing reducer is not a reason to stop: discovery by email comes next (identities.ts), and the log says why.
      this.logger.warn({ runId: request.runId, error: r.error.message }, 'getIdentity failed; falling back to discovery by email')
      return undefined
    }
    return r.value
  }

  /**
   * The options of a `prefetch = true` prompt field, for the Slack app's external selects: the flow's
   * `prefetch[field]` reducer, called with a `prompt` event of `who.userId`. Throws an Error with a message fit for
   * the person (the flow has no such reducer, it failed, or the implementation cannot run).
   */
  async prefetch(flowId: string, field: string, who: PromptCaller): Promise<FieldOptionData[]> {
    const p = await this.promptCall(flowId, who)
    if (p.loaded.kind !== 'flow') throw new Error(p.loaded.kind === 'python' ? p.loaded.message : p.loaded.failure.message)
    const r = await p.loaded.flow.callPrefetch(field, p.data, { context: p.context })
    if (!r.ok) throw new Error(r.error.message)
    return r.value
  }

  /**
   * The flow's `onPrompt` (before the Slack app shows the request form) or `afterPrompt` (once shown) hook, with a
   * `prompt` event of `who.userId`. `ignore` means: do not show the form, tell the person `message`. A flow without
   * the hook, or whose implementation is Python, proceeds; a failing hook is `{ok: false}` (show the message, and
   * report it).
   */
  async promptHook(flowId: string, hook: 'onPrompt' | 'afterPrompt', who: PromptCaller): Promise<HookOutcome> {
    const p = await this.promptCall(flowId, who)
    if (p.loaded.kind === 'failed') return p.loaded.failure
    if (p.loaded.kind === 'python' || !p.loaded.flow.has(hook)) return { ok: true, reply: { type: 'proceed' }, defined: false }
    const r = await p.loaded.flow.callHook(hook, p.data, { context: p.context })
    return r.ok ? { ok: true, reply: r.value, defined: r.defined } : { ok: false, kind: r.error.kind, message: r.error.message }
  }

  /** A `prompt` event (no run yet) of a flow as it is now. */
  private async promptCall(flowId: string, who: PromptCaller): Promise<{ loaded: Loaded; data: EventData; context: HostContext }> {
    const flow = await this.db.flow.findUniqueOrThrow({ where: { id: flowId }, include: { environment: { select: { slug: true } }, org: { select: { slug: true } } } })
    const [loaded, user, integrations] = await Promise.all([
      this.load(flow.id, flow.version, flow.implementation),
      this.db.user.findFirstOrThrow({ where: { id: who.userId, orgId: flow.orgId }, select: USER_WITH_IDENTITIES }),
      this.environmentIntegrations(flow.environmentId),
    ])
    const vars: Record<string, string> = {}
    for (const [k, v] of Object.entries(asRecord(flow.vars))) vars[k] = typeof v === 'string' ? v : JSON.stringify(v)
    const channel = who.channel ?? { type: 'slack', identifier: null }
    const requester = userData(user)
    const data: EventData = {
      name: 'prompt',
      timestamp: new Date().toISOString(),
      user: requester,
      channel,
      payload: { fields: {} },
      flow: { name: flow.slug, srn: srns.flow(flow.org.slug, flow.slug, flow.version), vars, environment: { name: flow.environment.slug, integrations } },
      run: { id: '', srn: '', actors: { prompt: requester }, contexts: {}, stepOutputs: {}, sourceChannel: channel },
    }
    return { loaded, data, context: { orgId: flow.orgId, flowId: flow.id, environmentId: flow.environmentId, runId: null, eventId: null } }
  }

  /**
   * The org's flows filter (`sym_flows_filter`'s `getFlows`) for the Slack flow-selection modal: the IDs of `flows`
   * to show `userId`, or undefined when the org has no filter or its implementation is Python (shown as is, logged).
   * Integration calls use the filter's own integrations. Throws an Error with a message fit for the person when the
   * filter fails (the caller decides what to show).
   */
  async getFlows(orgId: string, userId: string, flows: readonly FlowInfo[]): Promise<readonly string[] | undefined> {
    const filter = await this.db.flowsFilter.findUnique({
      where: { orgId },
      include: { integrations: { include: { integration: { select: { type: true, externalId: true, settings: true } } } }, org: { select: { slug: true } } },
    })
    if (!filter) return undefined
    const sandbox = await this.sandbox()
    const loaded = await sandbox.loadFlowsFilter({ flowId: filter.id, version: filter.updatedAt.getTime() }, filter.implementation)
    if (!loaded.ok) {
      if (loaded.error.kind === 'unsupported_language') {
        this.logger.warn({ orgId }, 'the flows filter is Python, which cannot run yet; every flow is listed')
        return undefined
      }
      throw new Error(`the flows filter cannot run: ${loaded.error.message}`)
    }
    const user = userData(await this.db.user.findFirstOrThrow({ where: { id: userId, orgId }, select: USER_WITH_IDENTITIES }))
    const vars: Record<string, string> = {}
    for (const [k, v] of Object.entries(asRecord(filter.vars))) vars[k] = typeof v === 'string' ? v : JSON.stringify(v)
    const integrations: Record<string, IntegrationData> = {}
    for (const r of filter.integrations) integrations[integrationName(r.key)] = { type: r.integration.type, externalId: r.integration.externalId, settings: integrationSettings(r.integration.settings) }
    // Integration calls need an event: a `prompt` of the person, whose "environment" is the filter's integrations.
    const channel: ChannelData = { type: 'slack', identifier: null }
    const event: EventData = {
      name: 'prompt',
      timestamp: new Date().toISOString(),
      user,
      channel,
      payload: { fields: {} },
      flow: { name: 'flows-filter', srn: `${filter.org.slug}:flows_filter`, vars, environment: { name: 'flows-filter', integrations } },
      run: { id: '', srn: '', actors: { prompt: user }, contexts: {}, stepOutputs: {}, sourceChannel: channel },
    }
    const r = await loaded.filter.getFlows(user, flows, vars, event, { context: { orgId, flowId: filter.id, environmentId: null, runId: null, eventId: null } })
    if (!r.ok) throw new Error(`the flows filter failed: ${r.error.message}`)
    return r.value
  }

  /** Legacy `getApprovers` → permissions and one notification (sandbox's `legacyRouting`). */
  async legacyRouting(approvers: Parameters<SandboxModule['legacyRouting']>[0]): Promise<{ permission: RequestPermissionData; notifications: NotificationData[] }> {
    return (await this.module()).legacyRouting(approvers)
  }

  async close(): Promise<void> {
    if (this.sandboxPromise) await (await this.sandboxPromise).close()
  }
}

/** One event's calls into its flow (hooks, routing). `flow` is undefined when there is nothing to run. */
export class EventCall {
  /** Set when the implementation is Python: the flow runs with the defaults. */
  readonly warning: string | undefined
  readonly failure: FlowFailure | undefined
  readonly flow: LoadedFlow<HostContext> | undefined

  constructor(
    private readonly runtime: FlowRuntime,
    loaded: Loaded | undefined,
    readonly data: EventData,
    readonly context: HostContext,
    readonly snapshot: RunSnapshot,
  ) {
    this.flow = loaded?.kind === 'flow' ? loaded.flow : undefined
    this.warning = loaded?.kind === 'python' ? loaded.message : undefined
    this.failure = loaded?.kind === 'failed' ? loaded.failure : undefined
  }

  /** Calls a hook (`onApprove`, `afterEscalate`, …); not exported, or no runnable flow: proceed. */
  async hook(name: HookName): Promise<HookOutcome> {
    if (this.failure) return this.failure
    if (!this.flow || !this.flow.has(name)) return { ok: true, reply: { type: 'proceed' }, defined: false }
    const r = await this.flow.callHook(name, this.data, { context: this.context })
    if (!r.ok) return { ok: false, kind: r.error.kind, message: r.error.message }
    return { ok: true, reply: r.value, defined: r.defined }
  }

  /** Who may decide and where the request goes: the reducers, else legacy `getApprovers`, else the defaults. */
  async route(): Promise<{ ok: true; routing: Routing } | FlowFailure> {
    if (this.failure) return this.failure
    const flow = this.flow
    const defaults = { permission: DEFAULT_PERMISSION_DATA, notifications: defaultNotifications(this.snapshot.flow.vars) }
    if (!flow) return { ok: true, routing: { ...defaults, source: 'default' } }
    if (!flow.has('getPermissions') && !flow.has('getRequestNotifications') && flow.has('getApprovers')) {
      const r = await flow.callReducer('getApprovers', this.data, { context: this.context })
      if (!r.ok) return { ok: false, kind: r.error.kind, message: r.error.message }
      return { ok: true, routing: { ...(await this.runtime.legacyRouting(r.value)), source: 'legacy' } }
    }
    let permission = defaults.permission
    let notifications = defaults.notifications
    if (flow.has('getPermissions')) {
      const r = await flow.callReducer('getPermissions', this.data, { context: this.context })
      if (!r.ok) return { ok: false, kind: r.error.kind, message: r.error.message }
      permission = r.value
    }
    if (flow.has('getRequestNotifications')) {
      const r = await flow.callReducer('getRequestNotifications', this.data, { context: this.context })
      if (!r.ok) return { ok: false, kind: r.error.kind, message: r.error.message }
      notifications = r.value
    }
    const source = flow.has('getPermissions') || flow.has('getRequestNotifications') ? 'reducers' : 'default'
    return { ok: true, routing: { permission, notifications, source } }
  }
}

type HookName = Parameters<LoadedFlow['callHook']>[0]
