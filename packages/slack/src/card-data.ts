/** Reads what a card shows about a run from PostgreSQL (the truth), for the pure builders of cards.ts. */
import type { Db } from '@opensym/db'
import { flowParams, readSnapshot } from '@opensym/engine'
import type { CardPerson, CardRun } from './cards.js'
import type { Installation } from './installations.js'
import { displayName, SLACK_SERVICE } from './users.js'

export interface CardContext {
  readonly card: CardRun
  readonly orgId: string
  readonly environmentId: string | null
  readonly requester: { readonly id: string; readonly email: string | null }
  readonly hasStrategy: boolean
}

const PERSON = { id: true, email: true, username: true, firstName: true, lastName: true } as const

function show(v: unknown): string {
  if (Array.isArray(v)) return v.map(show).join(', ')
  if (typeof v === 'boolean') return v ? 'yes' : 'no'
  return typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v)
}

export async function loadCard(db: Db, inst: Installation | undefined, runId: string): Promise<CardContext | undefined> {
  const run = await db.run.findUnique({ where: { id: runId }, include: { requester: { select: PERSON } } })
  if (!run) return undefined
  const events = await db.runEvent.findMany({
    where: { runId, name: { in: ['approve', 'deny', 'escalate', 'deescalate'] } },
    orderBy: { seq: 'asc' },
    include: { actor: { select: PERSON } },
  })
  const people = [run.requester, ...events.flatMap((e) => (e.actor ? [e.actor] : []))]
  const slackIds = new Map<string, string>()
  if (inst) {
    const ids = await db.userIdentity.findMany({ where: { userId: { in: [...new Set(people.map((p) => p.id))] }, service: SLACK_SERVICE, serviceId: inst.teamId }, select: { userId: true, externalUserId: true } })
    for (const i of ids) slackIds.set(i.userId, i.externalUserId)
  }
  const person = (u: (typeof people)[number] | null): CardPerson | null => (u ? { name: displayName(u), ...(slackIds.has(u.id) ? { slackUserId: slackIds.get(u.id)! } : {}) } : null)

  const snapshot = readSnapshot(run.snapshot)
  const params = flowParams(snapshot.flow.params)
  const fields = (run.fields && typeof run.fields === 'object' && !Array.isArray(run.fields) ? run.fields : {}) as Record<string, unknown>
  const labels = new Map(params.prompt_fields.map((f) => [f.name, f.label ?? f.name]))
  const order = [...params.prompt_fields.map((f) => f.name)].sort((a, b) => (a === 'reason' ? -1 : b === 'reason' ? 1 : 0))
  const shown = order.filter((n) => n !== 'duration' && n !== 'target_id' && fields[n] !== undefined).map((n) => ({ label: labels.get(n) ?? n, value: show(fields[n]) }))

  const decision = [...events].reverse().find((e) => (e.name === 'approve' || e.name === 'deny') && e.status === 'success')
  const pendingDecision = events.some((e) => (e.name === 'approve' || e.name === 'deny') && e.status === 'pending')
  const deescalation = [...events].reverse().find((e) => e.name === 'deescalate' && e.status === 'success')
  const failedEscalation = [...events].reverse().find((e) => e.name === 'escalate' && e.status === 'error')
  const decisionMessage = decision && typeof (decision.fields as Record<string, unknown> | null)?.decision_message === 'string' ? ((decision.fields as Record<string, unknown>).decision_message as string) : undefined

  const card: CardRun = {
    runId: run.id,
    flowTitle: snapshot.flow.label ?? snapshot.flow.slug,
    environmentSlug: snapshot.flow.environmentSlug,
    requester: person(run.requester)!,
    status: run.status,
    ...(snapshot.target ? { target: snapshot.target.label ?? snapshot.target.slug } : {}),
    durationSeconds: run.durationSeconds,
    fields: shown,
    includeDecisionMessage: params.include_decision_message,
    revocable: params.allow_revoke && snapshot.strategy !== null,
    ...(decision ? { decision: { approved: decision.name === 'approve', by: person(decision.actor), at: decision.completedAt ?? decision.createdAt, ...(decisionMessage ? { message: decisionMessage } : {}) } } : {}),
    escalatedAt: run.escalatedAt,
    expiresAt: run.expiresAt,
    ...(deescalation
      ? { deescalation: { at: deescalation.completedAt ?? deescalation.createdAt, by: person(deescalation.actor), manual: (deescalation.fields as Record<string, unknown> | null)?.deescalate_type === 'manual' } }
      : {}),
    ...(failedEscalation?.error ? { error: failedEscalation.error } : {}),
    pendingDecision,
  }
  return { card, orgId: run.orgId, environmentId: run.environmentId, requester: { id: run.requester.id, email: run.requester.email }, hasStrategy: snapshot.strategy !== null }
}
