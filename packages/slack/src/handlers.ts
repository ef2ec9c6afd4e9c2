/**
 * What the Slack endpoints do, framework-free: the routes verify the signature, parse the body and hand it here.
 * Each handler answers within Slack's 3 seconds: what must be answered inline (a modal's errors, the flow picked in
 * the selection modal) is; a decision is recorded in PostgreSQL before the click is acknowledged (so a Slack outage
 * afterwards cannot lose it); Slack calls that may be slow (opening a modal, telling someone privately) run after
 * the acknowledgement (`after`) or through the `slack` queue.
 */
import type { Db } from '@opensym/db'
import { sourceRefusal, type Principal } from '@opensym/domain'
import { EngineError, FLOW_FOR_REQUEST, flowParams, silentLogger, systemClock, type Clock, type EngineLogger, type RunService } from '@opensym/engine'
import type { WebClient } from '@slack/web-api'
import { escapeMrkdwn } from './blocks.js'
import { ACTION_APPROVE, ACTION_DENY, ACTION_REVOKE, DECISION_MESSAGE_BLOCK } from './cards.js'
import { slackError, type SlackClients } from './client.js'
import { once } from './deliveries.js'
import type { Installation, Installations } from './installations.js'
import {
  CALLBACK_REQUEST,
  CALLBACK_SELECT_FLOW,
  decodeMetadata,
  flowSelectionModal,
  inputState,
  modalErrors,
  readRequestForm,
  requestModal,
  SELECT_FLOW_BLOCK,
  type FlowChoice,
  type ModalFlow,
  type StateValues,
} from './modals.js'
import { type BlockActions, type BlockSuggestion, type EventCallback, Interaction, parse, SlashCommand, SlackEvent, type ViewSubmission } from './payloads.js'
import type { SlackQueue } from './queue.js'
import { forgetSlackUser, resolveSlackActor, type SlackActor } from './users.js'

/** An HTTP answer to Slack, plus work to do once it is sent. */
export interface SlackReply {
  readonly status: number
  readonly body?: unknown
  readonly after?: () => Promise<void>
}

/**
 * `sym_flows_filter`'s `getFlows` reducer: the ids of the flows the user may run, or undefined for all; throws when
 * the filter fails. `runtimeFlowsFilter` (flow-code.ts) runs it in the sandbox; without one, all flows are listed.
 */
export type FlowsFilter = (q: { readonly orgId: string; readonly user: { readonly id: string; readonly email: string | null; readonly role: string }; readonly flows: readonly FlowChoice[] }) => Promise<readonly string[] | undefined>

/**
 * A prefetch reducer: the options of an external select for `query` (Slack then filters them by the text typed).
 * `runtimePrefetch` (flow-code.ts) runs it in the sandbox; without one, external selects stay empty.
 */
export type PrefetchOptions = (q: {
  readonly orgId: string
  readonly flowId: string
  readonly field: string
  readonly query: string
  readonly userId: string
  /** The channel the modal was opened from. */
  readonly channelId?: string | null
}) => Promise<ReadonlyArray<{ readonly value: string; readonly label: string }>>

/**
 * A flow's prompt hooks around its request form: `onPrompt` before it is shown (`ok: false` keeps it closed and tells
 * the person `message`; `error` is for the log), `afterPrompt` once it is (its answer is ignored).
 * `runtimePromptHook` (flow-code.ts) runs them; without one, forms always open.
 */
export type PromptHook = (
  hook: 'onPrompt' | 'afterPrompt',
  q: { readonly orgId: string; readonly flowId: string; readonly userId: string; readonly channelId: string | null },
) => Promise<{ readonly ok: true } | { readonly ok: false; readonly message: string; readonly error?: string }>

/** Slack's limits on an external select's options (block_suggestion responses). */
const OPTIONS_MAX = 100
const OPTION_TEXT_MAX = 75
const OPTION_VALUE_MAX = 150

export interface SlackHandlerDeps {
  readonly db: Db
  readonly runs: RunService
  readonly installations: Installations
  readonly clients: SlackClients
  /** Where refusals told privately go; without one they are sent after the acknowledgement, in process. */
  readonly queue?: SlackQueue
  readonly logger?: EngineLogger
  readonly clock?: Clock
  readonly flowsFilter?: FlowsFilter
  readonly prefetch?: PrefetchOptions
  readonly promptHook?: PromptHook
}

const OK: SlackReply = { status: 200 }
const ephemeralReply = (text: string): SlackReply => ({ status: 200, body: { response_type: 'ephemeral', text } })
const REQUEST_WORDS = new Set(['req', 'request'])
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
export const NOT_CONNECTED = 'This Slack workspace is not connected to Sym. An admin can install the app from the Sym API (`/api/v1/slack/install`).'

type FlowRow = Awaited<ReturnType<SlackHandlers['flowsFor']>>[number]

export class SlackHandlers {
  private readonly db: Db
  private readonly runs: RunService
  private readonly installations: Installations
  private readonly clients: SlackClients
  private readonly queue: SlackQueue | undefined
  private readonly log: EngineLogger
  private readonly clock: Clock

  constructor(private readonly deps: SlackHandlerDeps) {
    this.db = deps.db
    this.runs = deps.runs
    this.installations = deps.installations
    this.clients = deps.clients
    this.queue = deps.queue
    this.log = deps.logger ?? silentLogger
    this.clock = deps.clock ?? systemClock
  }

  // --- /sym ---------------------------------------------------------------------------------------------------------

  async command(body: unknown): Promise<SlackReply> {
    const cmd = parse(SlashCommand, body)
    if (!cmd) return { status: 400, body: { error: 'malformed slash command' } }
    const inst = await this.installations.byTeam(cmd.team_id)
    if (!inst) return ephemeralReply(NOT_CONNECTED)
    const words = cmd.text.trim().split(/\s+/).filter(Boolean)
    const [first, name, env] = words
    const subcommand = first === undefined || REQUEST_WORDS.has(first.toLowerCase())
    const meta = { channelId: cmd.channel_id || null }
    return {
      ...OK,
      after: async () => {
        const client = this.clients.forToken(inst.token)
        const who = await resolveSlackActor(this.db, client, inst, cmd.user_id, this.clock())
        if (!who.ok) {
          await this.tell(inst, `cmd-${cmd.trigger_id}`, cmd.channel_id, cmd.user_id, who.reason)
          return
        }
        const { flows, note } = await this.runnableFlows(inst, who.actor)
        let prompted: string | undefined
        let view = flowSelectionModal(flows.map(choiceOf), meta)
        if (who.actor.principal.role === 'guest') view = flowSelectionModal([], meta, 'Guests cannot start flows.')
        else if (note) view = flowSelectionModal([], meta, note)
        // Notes are mrkdwn: what the person typed is escaped, so it renders as text (no mentions or links).
        else if (!subcommand) view = flowSelectionModal(flows.map(choiceOf), meta, `Unknown command "${escapeMrkdwn(first ?? '')}". Try \`/sym req <flow> [environment]\`.`)
        else if (name) {
          const wanted = name.toLowerCase()
          const matches = flows.filter((f) => f.slug === wanted && (env === undefined || f.environment.slug === env.toLowerCase()))
          if (matches.length === 1) {
            const refused = await this.onPrompt(inst, matches[0]!.id, who.actor, meta.channelId)
            if (refused) view = flowSelectionModal(flows.map(choiceOf), meta, refused)
            else {
              view = requestModal(modalFlowOf(matches[0]!), meta)
              prompted = matches[0]!.id
            }
          } else if (matches.length > 1) view = flowSelectionModal(flows.map(choiceOf), meta, `"${escapeMrkdwn(name)}" exists in several environments; pick one, or use \`/sym req ${escapeMrkdwn(name)} <environment>\`.`)
          else view = flowSelectionModal(flows.map(choiceOf), meta, `No flow "${escapeMrkdwn(name)}"${env ? ` in environment "${escapeMrkdwn(env)}"` : ''} that you can run here.`)
        }
        await client.views.open({ trigger_id: cmd.trigger_id, view: view as never })
        if (prompted) await this.afterPrompt(inst, prompted, who.actor, meta.channelId)
      },
    }
  }

  // --- interactivity ------------------------------------------------------------------------------------------------

  async interaction(body: unknown): Promise<SlackReply> {
    const raw = body && typeof body === 'object' ? (body as { payload?: unknown }).payload : undefined
    const payload = parse(Interaction, raw)
    if (!payload) return { status: 400, body: { error: 'malformed interaction payload' } }
    const inst = await this.installations.byTeam(payload.team.id)
    if (!inst) return { status: 403, body: { error: 'unknown workspace' } }
    switch (payload.type) {
      case 'block_actions':
        return this.blockActions(inst, payload)
      case 'view_submission':
        return this.viewSubmission(inst, payload)
      case 'block_suggestion':
        return this.blockSuggestion(inst, payload)
      default:
        return OK
    }
  }

  private async blockActions(inst: Installation, p: BlockActions): Promise<SlackReply> {
    const action = p.actions[0]!
    const kind = action.action_id === ACTION_APPROVE ? 'approve' : action.action_id === ACTION_DENY ? 'deny' : action.action_id === ACTION_REVOKE ? 'revoke' : undefined
    if (!kind) return OK // inputs on the card (the decision message) also send actions
    const runId = action.value ?? ''
    const channel = p.container.channel_id ?? p.channel?.id ?? ''
    if (!UUID.test(runId) || !channel) return { status: 400, body: { error: 'malformed action' } }
    // The same click delivered twice has the same user, message and action_ts: it acts once.
    const key = `click:${inst.teamId}:${p.user.id}:${p.container.message_ts ?? ''}:${action.action_id}:${action.action_ts ?? p.trigger_id ?? ''}`
    let reply: SlackReply = OK
    const client = this.clients.forToken(inst.token)
    let acted = false
    const first = await once(this.db, key, { orgId: inst.orgId, runId, teamId: inst.teamId, channel, slackUser: p.user.id }, async () => {
      acted = true
      const who = await resolveSlackActor(this.db, client, inst, p.user.id, this.clock())
      if (!who.ok) {
        reply = this.refuse(inst, key, channel, p.user.id, who.reason)
        return
      }
      try {
        const eventId =
          kind === 'revoke'
            ? (await this.runs.revoke(who.actor.principal, runId, 'slack')).event_id
            : (await this.runs.decide(who.actor.principal, kind, { run_id: runId, ...decisionMessage(p.state?.values) }, 'slack')).event_id
        await this.db.slackDelivery.update({ where: { key }, data: { eventId } })
      } catch (e) {
        if (!(e instanceof EngineError) || e.kind === 'CONFLICT') throw e
        reply = this.refuse(inst, key, channel, p.user.id, refusalText(kind, e))
      }
    })
    if (!first && !acted) this.log.debug({ key }, 'duplicate click ignored')
    return reply
  }

  private async viewSubmission(inst: Installation, p: ViewSubmission): Promise<SlackReply> {
    const client = this.clients.forToken(inst.token)
    const who = await resolveSlackActor(this.db, client, inst, p.user.id, this.clock())
    const meta = decodeMetadata(p.view.private_metadata)
    const values = p.view.state.values as StateValues
    if (p.view.callback_id === CALLBACK_SELECT_FLOW) {
      const flowId = inputState(values, SELECT_FLOW_BLOCK)?.selected_option?.value
      if (!who.ok) return errorsReply({ [SELECT_FLOW_BLOCK]: who.reason })
      const flow = flowId ? (await this.runnableFlows(inst, who.actor)).flows.find((f) => f.id === flowId) : undefined
      if (!flow) return errorsReply({ [SELECT_FLOW_BLOCK]: 'Choose one of the flows you can run here.' })
      const refused = await this.onPrompt(inst, flow.id, who.actor, meta.channelId)
      if (refused) return errorsReply({ [SELECT_FLOW_BLOCK]: refused })
      const actor = who.actor
      return { status: 200, body: { response_action: 'update', view: requestModal(modalFlowOf(flow), meta) }, after: () => this.afterPrompt(inst, flow.id, actor, meta.channelId) }
    }
    if (p.view.callback_id !== CALLBACK_REQUEST) return OK
    const flow = meta.flowId && UUID.test(meta.flowId) ? await this.db.flow.findFirst({ where: { id: meta.flowId, orgId: inst.orgId }, include: FLOW_FOR_REQUEST }) : null
    if (!flow) return { status: 200, body: { response_action: 'update', view: flowSelectionModal([], meta, 'This flow no longer exists.') } }
    const modal = modalFlowOf(flow)
    const view = requestModal(modal, meta)
    if (!who.ok) return errorsReply(modalErrors(view, [{ field: firstInput(view), message: who.reason }]))
    const allowed = (await this.runnableFlows(inst, who.actor)).flows.some((f) => f.id === flow.id)
    if (!allowed) return errorsReply(modalErrors(view, [{ field: firstInput(view), message: 'You cannot run this flow from Slack.' }]))
    try {
      await this.runs.createRequest(who.actor.principal, {
        flow_srn: flow.slug,
        flow_inputs: readRequestForm(modal, values),
        context: { source: 'slack', slack: { team_id: inst.teamId, channel_id: meta.channelId ?? null, user_id: p.user.id } },
      }, 'slack')
      return OK // closes the modal
    } catch (e) {
      if (!(e instanceof EngineError) || e.kind === 'CONFLICT') throw e
      const fields = e.errors.length ? e.errors : [{ field: firstInput(view), message: e.message }]
      return errorsReply(modalErrors(view, fields))
    }
  }

  private async blockSuggestion(inst: Installation, p: BlockSuggestion): Promise<SlackReply> {
    const meta = decodeMetadata(p.view?.private_metadata)
    const field = p.block_id.replace(/^field:/, '')
    if (!this.deps.prefetch || !meta.flowId) return { status: 200, body: { options: [] } }
    const who = await resolveSlackActor(this.db, this.clients.forToken(inst.token), inst, p.user.id, this.clock())
    if (!who.ok) return { status: 200, body: { options: [] } }
    let options: Awaited<ReturnType<PrefetchOptions>>
    try {
      options = await this.deps.prefetch({ orgId: inst.orgId, flowId: meta.flowId, field, query: p.value, userId: who.actor.principal.userId, channelId: meta.channelId ?? null })
    } catch (e) {
      // Slack shows nothing but the options: an empty list, and the reason in the log.
      this.log.warn({ flowId: meta.flowId, field, error: e instanceof Error ? e.message : String(e) }, 'prefetch reducer failed')
      return { status: 200, body: { options: [] } }
    }
    const q = p.value.toLowerCase()
    return {
      status: 200,
      body: {
        options: options
          .filter((o) => q === '' || o.label.toLowerCase().includes(q) || o.value.toLowerCase().includes(q))
          .filter((o) => o.value.length <= OPTION_VALUE_MAX) // a cut value would not be the value any more
          .slice(0, OPTIONS_MAX)
          .map((o) => ({ text: { type: 'plain_text', text: o.label.slice(0, OPTION_TEXT_MAX) || o.value.slice(0, OPTION_TEXT_MAX) }, value: o.value })),
      },
    }
  }

  // --- Events API ---------------------------------------------------------------------------------------------------

  async event(body: unknown): Promise<SlackReply> {
    const e = parse(SlackEvent, body)
    if (!e) return { status: 400, body: { error: 'malformed event' } }
    if (e.type === 'url_verification') return { status: 200, body: { challenge: e.challenge } }
    return this.eventCallback(e)
  }

  private async eventCallback(e: EventCallback): Promise<SlackReply> {
    const type = e.event.type
    if (type === 'app_uninstalled' || (type === 'tokens_revoked' && (e.event.tokens?.bot?.length ?? 0) > 0)) {
      // Idempotent: a retried delivery (same event_id) finds nothing left to revoke.
      const n = await this.installations.revoke(e.team_id, this.clock())
      this.log.info({ teamId: e.team_id, event: type, eventId: e.event_id, revoked: n }, 'slack installation revoked')
    } else if (type === 'user_change' && e.event.user) {
      const dropped = await forgetSlackUser(this.db, e.team_id, e.event.user)
      if (dropped) this.log.info({ teamId: e.team_id, slackUserId: e.event.user.id, eventId: e.event_id }, 'slack user no longer a full member: identity dropped')
    }
    return { status: 200, body: { ok: true } }
  }

  // --- helpers ------------------------------------------------------------------------------------------------------

  /** Flows of the org whose environment uses this workspace, startable from Slack, filtered for the user. */
  async flowsFor(inst: Installation) {
    const flows = await this.db.flow.findMany({
      where: { orgId: inst.orgId, environment: { integrations: { some: { key: 'slack_id', integrationId: inst.integrationId } } } },
      include: FLOW_FOR_REQUEST,
      orderBy: { slug: 'asc' },
    })
    return flows.filter((f) => {
      // The same rule RunService.createRequest applies when the form is submitted.
      return sourceRefusal(flowParams(f.params).allowed_sources, 'slack', f.slug) === undefined
    })
  }

  /** The flows `actor` may start here; `note` says why there are none when the flows filter failed. */
  private async runnableFlows(inst: Installation, actor: SlackActor): Promise<{ flows: FlowRow[]; note?: string }> {
    if (actor.principal.role === 'guest') return { flows: [] } // guests cannot start flows (reference §5)
    const flows = await this.flowsFor(inst)
    if (!this.deps.flowsFilter || flows.length === 0) return { flows }
    let ids: readonly string[] | undefined
    try {
      ids = await this.deps.flowsFilter({ orgId: inst.orgId, user: { id: actor.principal.userId, email: actor.email, role: actor.principal.role }, flows: flows.map(choiceOf) })
    } catch (e) {
      // Fail closed: the filter may be what keeps a flow from someone. The details are the admins' (the log).
      this.log.warn({ orgId: inst.orgId, error: e instanceof Error ? e.message : String(e) }, 'flows filter failed')
      return { flows: [], note: 'Sym could not work out which flows you can run (the flows filter failed). Please tell an admin.' }
    }
    if (ids === undefined) return { flows }
    const keep = new Set(ids)
    return { flows: flows.filter((f) => keep.has(f.id)) }
  }

  /** The flow's `onPrompt`: undefined to show the form, else what to tell the person instead. */
  private async onPrompt(inst: Installation, flowId: string, actor: SlackActor, channelId: string | null | undefined): Promise<string | undefined> {
    if (!this.deps.promptHook) return undefined
    let r: Awaited<ReturnType<PromptHook>>
    try {
      r = await this.deps.promptHook('onPrompt', { orgId: inst.orgId, flowId, userId: actor.principal.userId, channelId: channelId ?? null })
    } catch (e) {
      r = { ok: false, message: 'This flow’s form cannot be opened right now. Please tell an admin.', error: e instanceof Error ? e.message : String(e) }
    }
    if (r.ok) return undefined
    if (r.error) this.log.warn({ flowId, error: r.error }, 'onPrompt failed')
    return r.message
  }

  /** The flow's `afterPrompt`, once the form is shown: side effects only, so failures are just logged. */
  private async afterPrompt(inst: Installation, flowId: string, actor: SlackActor, channelId: string | null | undefined): Promise<void> {
    if (!this.deps.promptHook) return
    const r = await this.deps.promptHook('afterPrompt', { orgId: inst.orgId, flowId, userId: actor.principal.userId, channelId: channelId ?? null }).catch((e: unknown) => ({ ok: false as const, message: '', error: e instanceof Error ? e.message : String(e) }))
    if (!r.ok) this.log.warn({ flowId, error: r.error ?? r.message }, 'afterPrompt failed')
  }

  /** A refusal only the clicker sees; the click's record keeps what the notifier needs. */
  private refuse(inst: Installation, key: string, channel: string, user: string, text: string): SlackReply {
    return { ...OK, after: () => this.tell(inst, key, channel, user, `:no_entry: ${text}`) }
  }

  /** An ephemeral message: through the queue when there is one (retried), else directly. */
  private async tell(inst: Installation, id: string, channel: string, user: string, text: string): Promise<void> {
    if (this.queue) return this.queue.ephemeral(id, { teamId: inst.teamId, channel, user, text })
    await postEphemeral(this.clients.forToken(inst.token), channel, user, text, this.log)
  }
}

async function postEphemeral(client: WebClient, channel: string, user: string, text: string, log: EngineLogger): Promise<void> {
  try {
    await client.chat.postEphemeral({ channel, user, text })
  } catch (e) {
    log.warn({ error: slackError(e) ?? String(e), channel }, 'could not send an ephemeral message')
  }
}

const errorsReply = (errors: Record<string, string>): SlackReply => ({ status: 200, body: { response_action: 'errors', errors } })

function firstInput(view: { blocks: ReadonlyArray<{ type: string; block_id?: string }> }): string {
  const id = view.blocks.find((b) => b.type === 'input')?.block_id ?? 'target_id'
  return id.replace(/^field:/, '')
}

function decisionMessage(values: StateValues | undefined): { decision_message?: string } {
  const text = values?.[DECISION_MESSAGE_BLOCK]?.value?.value?.trim()
  return text ? { decision_message: text.slice(0, 3000) } : {}
}

function refusalText(kind: 'approve' | 'deny' | 'revoke', e: EngineError): string {
  if (e.kind === 'NOT_FOUND') return 'This request no longer exists.'
  if (e.kind === 'APPROVE_INVALID_RUN' || e.kind === 'DENY_INVALID_RUN') return `This request can no longer be ${kind === 'approve' ? 'approved' : 'denied'}: ${e.message}`
  if (e.kind === 'DEESCALATE_INVALID_RUN') return `This access cannot be revoked now: ${e.message}`
  return e.message
}

function choiceOf(f: FlowRow): FlowChoice {
  return { id: f.id, slug: f.slug, label: f.label, environmentSlug: f.environment.slug }
}

function modalFlowOf(f: FlowRow): ModalFlow {
  const params = flowParams(f.params)
  return {
    id: f.id,
    slug: f.slug,
    label: f.label,
    environmentSlug: f.environment.slug,
    hasStrategy: f.strategy !== null,
    scheduleDeescalation: params.schedule_deescalation,
    ...(params.additional_header_text ? { additionalHeaderText: params.additional_header_text } : {}),
    fields: params.prompt_fields,
    targets: f.strategy?.targets.map((t) => ({ id: t.target.id, label: t.target.label ?? t.target.slug })) ?? [],
  }
}

export type { Principal }
