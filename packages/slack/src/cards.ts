/**
 * The request card (the message approvers act on) in each of a run's states, and the requester's DMs. Pure: the
 * notifier gathers a {@link CardRun} from PostgreSQL and posts or updates what these return.
 */
import type { RunStatus } from '@opensym/domain'
import { context, escapeMrkdwn, LIMITS, mrkdwn, plain, section, truncate, type Block } from './blocks.js'

export const ACTION_APPROVE = 'sym_approve'
export const ACTION_DENY = 'sym_deny'
export const ACTION_REVOKE = 'sym_revoke'
export const DECISION_MESSAGE_BLOCK = 'decision_message'
export const ACTIONS_BLOCK = 'sym_actions'

/** A person on the card: mentioned when they have a Slack identity, named otherwise. */
export interface CardPerson {
  readonly slackUserId?: string
  readonly name: string
}

export interface CardRun {
  readonly runId: string
  readonly flowTitle: string
  readonly environmentSlug: string
  readonly requester: CardPerson
  readonly status: RunStatus
  readonly target?: string
  readonly durationSeconds?: number | null
  /** Prompt field values other than the target and duration, in form order, `reason` first. */
  readonly fields: ReadonlyArray<{ readonly label: string; readonly value: string }>
  readonly includeDecisionMessage: boolean
  /** Whether a Revoke button belongs on an escalated run's card (allow_revoke and a strategy). */
  readonly revocable: boolean
  readonly decision?: { readonly approved: boolean; readonly by: CardPerson | null; readonly at: Date; readonly message?: string }
  readonly escalatedAt?: Date | null
  readonly expiresAt?: Date | null
  readonly deescalation?: { readonly at: Date; readonly by: CardPerson | null; readonly manual: boolean }
  readonly error?: string
  /** The request is still pending but a decision is being processed (between the click and its step). */
  readonly pendingDecision?: boolean
}

export const who = (p: CardPerson | null | undefined) => (p ? (p.slackUserId ? `<@${p.slackUserId}>` : escapeMrkdwn(p.name)) : 'Sym')

/** Slack renders this in the reader's time zone; the fallback is UTC. */
export function slackDate(d: Date): string {
  const unix = Math.floor(d.getTime() / 1000)
  return `<!date^${unix}^{date_short_pretty} at {time}|${d.toISOString().replace(/\.\d{3}Z$/, 'Z')}>`
}

export function formatDuration(seconds: number): string {
  const units: Array<[number, string]> = [
    [86_400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ]
  const parts: string[] = []
  let left = seconds
  for (const [size, name] of units) {
    const n = Math.floor(left / size)
    if (n > 0) parts.push(`${n} ${name}${n === 1 ? '' : 's'}`)
    left -= n * size
    if (parts.length === 2) break
  }
  return parts.join(' ') || '0 seconds'
}

const button = (text: string, actionId: string, value: string, style?: 'primary' | 'danger'): Block => ({
  type: 'button',
  action_id: actionId,
  text: plain(text, LIMITS.buttonText),
  value,
  ...(style ? { style } : {}),
})

function statusLines(run: CardRun): string[] {
  const lines: string[] = []
  if (run.decision) {
    const verb = run.decision.approved ? ':white_check_mark: Approved' : ':x: Denied'
    lines.push(`${verb} by ${who(run.decision.by)} ${slackDate(run.decision.at)}`)
    if (run.decision.message) lines.push(`*Decision message:* ${escapeMrkdwn(run.decision.message)}`)
  }
  switch (run.status) {
    case 'requested':
      if (run.pendingDecision) lines.push(':hourglass_flowing_sand: A decision is being processed…')
      break
    case 'approved':
      lines.push(':hourglass_flowing_sand: Granting access…')
      break
    case 'escalated':
      lines.push(run.expiresAt ? `:unlock: Access granted until ${slackDate(run.expiresAt)}` : ':unlock: Access granted (until revoked)')
      break
    case 'deescalated':
      if (run.deescalation) {
        lines.push(
          run.deescalation.manual
            ? `:lock: Access revoked by ${who(run.deescalation.by)} ${slackDate(run.deescalation.at)} (de-escalated)`
            : `:lock: Access ended ${slackDate(run.deescalation.at)} (de-escalated)`,
        )
      } else lines.push(':lock: Access ended (de-escalated)')
      break
    case 'expired':
      lines.push(':hourglass: This request expired without a decision.')
      break
    case 'errored':
      lines.push(`:warning: Access could not be granted${run.error ? `: ${escapeMrkdwn(run.error)}` : '.'}`)
      break
    case 'denied':
      break
  }
  return lines
}

/** The card's blocks for the run's current state. */
export function requestCard(run: CardRun): { text: string; blocks: Block[] } {
  // The notification text is mrkdwn too: a name like `<!channel>` must not ping the channel the card goes to.
  const summary = escapeMrkdwn(`${run.requester.name} requests ${run.target ? `${run.target} via ` : ''}${run.flowTitle}`)
  const facts: string[] = [`*Requester:* ${who(run.requester)}`, `*Flow:* ${escapeMrkdwn(run.flowTitle)} (\`${run.environmentSlug}\`)`]
  if (run.target) facts.push(`*Target:* ${escapeMrkdwn(run.target)}`)
  if (run.durationSeconds) facts.push(`*Duration:* ${formatDuration(run.durationSeconds)}`)
  const blocks: Block[] = [section(`:key: *Access request*\n${facts.join('\n')}`, 'summary')]
  const fieldText = run.fields.map((f) => `*${escapeMrkdwn(f.label)}:* ${escapeMrkdwn(f.value)}`).join('\n')
  if (fieldText) blocks.push({ type: 'section', block_id: 'fields', text: mrkdwn(fieldText, LIMITS.sectionText) })
  const status = statusLines(run)
  if (status.length) blocks.push({ type: 'section', block_id: 'status', text: mrkdwn(status.join('\n')) })

  const actionable = run.status === 'requested' && !run.pendingDecision
  if (actionable) {
    if (run.includeDecisionMessage) {
      blocks.push({
        type: 'input',
        block_id: DECISION_MESSAGE_BLOCK,
        optional: true,
        dispatch_action: false,
        label: plain('Decision message (optional)', LIMITS.label),
        element: { type: 'plain_text_input', action_id: 'value', max_length: 3000 },
      })
    }
    blocks.push({ type: 'actions', block_id: ACTIONS_BLOCK, elements: [button('Approve', ACTION_APPROVE, run.runId, 'primary'), button('Deny', ACTION_DENY, run.runId, 'danger')] })
  } else if (run.status === 'escalated' && run.revocable) {
    blocks.push({ type: 'actions', block_id: ACTIONS_BLOCK, elements: [button('Revoke', ACTION_REVOKE, run.runId, 'danger')] })
  }
  blocks.push(context(`Run \`${run.runId}\``))
  return { text: truncate(summary, 3000), blocks }
}

export type DmKind = 'approved' | 'denied' | 'expired' | 'escalated' | 'escalation_failed' | 'deescalated'

/** What the requester is told, in one line (with the card's facts as context). */
export function requesterDm(kind: DmKind, run: CardRun): { text: string; blocks: Block[] } {
  const what = `${run.target ? `*${escapeMrkdwn(run.target)}* (${escapeMrkdwn(run.flowTitle)})` : `*${escapeMrkdwn(run.flowTitle)}*`}`
  const by = run.decision ? ` by ${who(run.decision.by)}` : ''
  const msg = run.decision?.message ? `\n*Decision message:* ${escapeMrkdwn(run.decision.message)}` : ''
  const text = {
    approved: `:white_check_mark: Your request for ${what} was approved${by}.${msg}`,
    denied: `:x: Your request for ${what} was denied${by}.${msg}`,
    expired: `:hourglass: Your request for ${what} expired without a decision.`,
    escalated: `:unlock: You now have access to ${what}${run.expiresAt ? ` until ${slackDate(run.expiresAt)}` : ''}.`,
    escalation_failed: `:warning: Your request for ${what} was approved, but access could not be granted${run.error ? `: ${escapeMrkdwn(run.error)}` : '.'}`,
    deescalated: `:lock: Your access to ${what} has ended (de-escalated).`,
  }[kind]
  return { text: truncate(text.replace(/[*<>]/g, ''), 3000), blocks: [section(text), context(`Run \`${run.runId}\``)] }
}
