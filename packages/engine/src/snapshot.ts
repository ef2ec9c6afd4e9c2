/**
 * What a run copies from configuration when it is requested (`Run.snapshot`): a run must finish — above all, be
 * de-escalated — with the strategy and target it was granted with, even if Terraform changes or deletes them.
 */
import type { StrategySnapshot, TargetSnapshot } from './strategy.js'

export interface FlowSnapshot {
  readonly id: string
  readonly slug: string
  readonly version: number
  readonly label: string | null
  readonly environmentId: string
  readonly environmentSlug: string
  /** `params` as the entities API stores it (allow_revoke, schedule_deescalation, prompt_fields, …). */
  readonly params: Readonly<Record<string, unknown>>
  readonly vars: Readonly<Record<string, string>>
  /** The flow's implementation source at request time (absent in runs from before it was kept). */
  readonly implementation?: string
}

export interface RunSnapshot {
  readonly orgSlug: string
  readonly flow: FlowSnapshot
  /** Null for approval-only flows. */
  readonly strategy: StrategySnapshot | null
  /** Null for approval-only flows. */
  readonly target: TargetSnapshot | null
}
