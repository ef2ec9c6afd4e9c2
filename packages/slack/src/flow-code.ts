/**
 * The Slack handlers' hooks into flow code, on the engine's `FlowRuntime` (which loads the sandbox on first use):
 * prefetch reducers fill external selects, the org's flows filter (`getFlows`) narrows `/sym`'s list, and a flow's
 * `onPrompt`/`afterPrompt` hooks run around its request form.
 */
import type { Db } from '@opensym/db'
import type { FlowRuntime } from '@opensym/engine'
import type { FlowsFilter, PrefetchOptions, PromptHook } from './handlers.js'

/** `block_suggestion` → the flow's `prefetch[field]` reducer, as the person in the channel the modal was opened from. */
export function runtimePrefetch(db: Db, runtime: FlowRuntime): PrefetchOptions {
  return async (q) => {
    // The modal's metadata names the flow; it must be one of the workspace's org.
    const flow = await db.flow.findFirst({ where: { id: q.flowId, orgId: q.orgId }, select: { id: true } })
    if (!flow) return []
    return runtime.prefetch(flow.id, q.field, { userId: q.userId, channel: { type: 'slack', identifier: q.channelId ?? null } })
  }
}

/** `/sym`'s flows → the org's `sym_flows_filter` `getFlows` (none: all of them). */
export function runtimeFlowsFilter(runtime: FlowRuntime): FlowsFilter {
  return (q) => runtime.getFlows(q.orgId, q.user.id, q.flows.map((f) => ({ id: f.id, name: f.slug, label: f.label, environment: f.environmentSlug })))
}

/**
 * `onPrompt`/`afterPrompt` with a `prompt` event of the person. `ApprovalTemplate.ignore({message})` keeps the form
 * closed with that message; a failing hook too, with a message for the person (the details go to the log). A
 * transition returned by `onPrompt` (Sym's "skip the form") is not acted on here: the form opens.
 */
export function runtimePromptHook(db: Db, runtime: FlowRuntime): PromptHook {
  return async (hook, q) => {
    const flow = await db.flow.findFirst({ where: { id: q.flowId, orgId: q.orgId }, select: { id: true } })
    if (!flow) return { ok: false, message: 'This flow no longer exists.' }
    const r = await runtime.promptHook(flow.id, hook, { userId: q.userId, channel: { type: 'slack', identifier: q.channelId } })
    if (!r.ok) return { ok: false, message: 'This flow’s form cannot be opened right now (its onPrompt hook failed). Please tell an admin.', error: r.message }
    if (r.reply.type === 'ignore') return { ok: false, message: r.reply.message }
    return { ok: true }
  }
}
