/**
 * The flows filter (`sym_flows_filter`, one per organization): a module of its own whose `getFlows` reducer decides
 * which flows a person sees in Slack's flow-selection modal (`/sym`). It is called with the person, the flows they
 * could otherwise run there (already narrowed by environment, `allowed_sources` and role) and the filter's `vars`;
 * it returns the ones to keep. Integration helpers (`pagerduty.getIncidents()`, `okta.isUserInGroup(…)`, …) work as
 * in flows, with the filter's own `integrations`.
 *
 * @example flows_filter.ts
 * ```ts
 * import { pagerduty, type FlowInfo, type User } from '@opensym/sdk'
 *
 * // Break-glass flows only while an incident is open.
 * export async function getFlows(user: User, flows: readonly FlowInfo[], vars: Record<string, string>) {
 *   const incident = (await pagerduty.getIncidents()).length > 0
 *   return flows.filter((f) => incident || !f.name.startsWith(vars.break_glass_prefix ?? 'break-glass'))
 * }
 * ```
 */
import type { User } from './event.js'

type Awaitable<T> = T | Promise<T>

/** A flow as the filter sees it. */
export interface FlowInfo {
  /** The flow's ID (a UUID). */
  readonly id: string
  /** Its name (slug), e.g. `aws-sso-access`. */
  readonly name: string
  /** Its label, when it has one. */
  readonly label: string | null
  /** The name of its environment, e.g. `prod`. */
  readonly environment: string
}

/** The functions of a flows filter module. */
export interface FlowsFilterFunctions {
  /**
   * The flows to show: a subset of `flows` (the objects themselves, or their names or IDs; a name keeps that flow in
   * every environment). Flows not in `flows` cannot be added.
   */
  getFlows(user: User, flows: readonly FlowInfo[], vars: Readonly<Record<string, string>>): Awaitable<ReadonlyArray<FlowInfo | string>>
}

/** The shape of a flows filter module: `import * as filter from './flows_filter'; filter satisfies FlowsFilterImplementation`. */
export type FlowsFilterImplementation = FlowsFilterFunctions

export const FLOWS_FILTER_FUNCTION_NAMES = ['getFlows'] as const

/** The IDs of `flows` that `returned` names (by object, ID or name), in the order of `flows`. Unknown entries are dropped. */
export function keptFlowIds(flows: readonly FlowInfo[], returned: readonly unknown[]): string[] {
  const refs = new Set<string>()
  for (const r of returned) {
    if (typeof r === 'string') refs.add(r)
    else if (typeof r === 'object' && r !== null && typeof (r as { id?: unknown }).id === 'string') refs.add((r as { id: string }).id)
  }
  return flows.filter((f) => refs.has(f.id) || refs.has(f.name)).map((f) => f.id)
}
