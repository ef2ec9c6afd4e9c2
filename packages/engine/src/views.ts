/** Runs and events as the Events API returns them (snake_case JSON, ISO timestamps). */
import type { Run, RunEvent } from '@opensym/db'
import { srns, type RunStatus } from '@opensym/domain'
import type { RunSnapshot } from './snapshot.js'

export interface UserView {
  readonly id: string
  readonly type: 'normal' | 'bot'
  readonly username: string
  readonly email: string | null
  readonly name: string
}

export interface TargetView {
  readonly id: string
  readonly srn: string
  readonly type: string
  readonly name: string
  readonly label: string | null
  readonly settings: Readonly<Record<string, string>>
}

export interface EventView {
  readonly id: string
  readonly seq: number
  readonly name: string
  readonly status: 'pending' | 'success' | 'error'
  readonly channel: string
  readonly actor: UserView | null
  /** Who submitted the event when not the actor (a bot token requesting for a user). */
  readonly submitted_by: UserView | null
  readonly fields: Record<string, unknown>
  readonly error: string | null
  /** A note on a step that went ahead anyway (a Python implementation that cannot run, a failed after-hook). */
  readonly warning: string | null
  /** Strategy output for escalate/deescalate (`{body, errors}`). */
  readonly output: unknown
  /** Whether a read-back of the target confirmed the change; null when the target cannot tell. */
  readonly verified: boolean | null
  readonly attempts: number
  readonly created_at: string
  readonly completed_at: string | null
}

export interface RunSummaryView {
  readonly id: string
  readonly srn: string
  readonly status: RunStatus
  readonly flow: { readonly id: string | null; readonly slug: string; readonly version: number; readonly srn: string }
  readonly requester: UserView
  readonly target: TargetView | null
  readonly fields: Record<string, unknown>
  readonly context: Record<string, unknown>
  /** Requested duration in seconds. */
  readonly duration: number | null
  readonly created_at: string
  readonly updated_at: string
  readonly request_expires_at: string | null
  readonly decided_at: string | null
  readonly escalated_at: string | null
  /** When access ends (escalated_at + duration), if de-escalation is scheduled. */
  readonly expires_at: string | null
  readonly deescalated_at: string | null
  readonly ended_at: string | null
}

export interface RunView extends RunSummaryView {
  /** The user who performed each step so far, by step name. */
  readonly actors: Readonly<Record<string, UserView>>
  readonly events: EventView[]
}

export interface UserRow {
  readonly id: string
  readonly type: 'normal' | 'bot'
  readonly username: string
  readonly email: string | null
  readonly firstName: string | null
  readonly lastName: string | null
}

export const USER_SELECT = { id: true, type: true, username: true, email: true, firstName: true, lastName: true } as const

export function userView(u: UserRow): UserView {
  return { id: u.id, type: u.type, username: u.username, email: u.email, name: [u.firstName, u.lastName].filter(Boolean).join(' ') || u.username }
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null)
const record = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {})

export function runSummaryView(run: Run & { requester: UserRow }, orgSlug: string): RunSummaryView {
  const snapshot = record(run.snapshot) as Partial<RunSnapshot>
  const t = snapshot.target
  return {
    id: run.id,
    srn: srns.run(orgSlug, run.flowSlug, run.flowVersion, run.id),
    status: run.status,
    flow: { id: run.flowId, slug: run.flowSlug, version: run.flowVersion, srn: srns.flow(orgSlug, run.flowSlug, run.flowVersion) },
    requester: userView(run.requester),
    target: t ? { id: t.id, srn: srns.target(orgSlug, t.type, t.slug, t.id), type: t.type, name: t.slug, label: t.label, settings: t.settings } : null,
    fields: record(run.fields),
    context: record(run.context),
    duration: run.durationSeconds,
    created_at: run.createdAt.toISOString(),
    updated_at: run.updatedAt.toISOString(),
    request_expires_at: iso(run.requestExpiresAt),
    decided_at: iso(run.decidedAt),
    escalated_at: iso(run.escalatedAt),
    expires_at: iso(run.expiresAt),
    deescalated_at: iso(run.deescalatedAt),
    ended_at: iso(run.endedAt),
  }
}

export function eventView(e: RunEvent & { actor: UserRow | null; submittedBy: UserRow | null }): EventView {
  return {
    id: e.id,
    seq: e.seq,
    name: e.name,
    status: e.status,
    channel: e.channel,
    actor: e.actor ? userView(e.actor) : null,
    submitted_by: e.submittedBy ? userView(e.submittedBy) : null,
    fields: record(e.fields),
    error: e.error,
    warning: e.warning,
    output: e.output ?? null,
    verified: e.verified,
    attempts: e.attempts,
    created_at: e.createdAt.toISOString(),
    completed_at: iso(e.completedAt),
  }
}

export function runView(run: Run & { requester: UserRow }, orgSlug: string, events: ReadonlyArray<RunEvent & { actor: UserRow | null; submittedBy: UserRow | null }>): RunView {
  const actors: Record<string, UserView> = {}
  for (const e of events) if (e.actor && e.status !== 'error') actors[e.name] = userView(e.actor)
  return { ...runSummaryView(run, orgSlug), actors, events: events.map(eventView) }
}
