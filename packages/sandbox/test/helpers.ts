import { fakeEventData, type FakeEventInput } from '@opensym/sdk/testing'
import type { EventData } from '@opensym/sdk/flow'
import { expect } from 'vitest'
import type { LoadedFlow, LoadResult } from '../src/index.js'

export const event = (input: FakeEventInput = {}): EventData => fakeEventData(input)

export function loaded<C>(r: LoadResult<C>): LoadedFlow<C> {
  if (!r.ok) throw new Error(`load failed: ${r.error.kind}: ${r.error.message}`)
  return r.flow
}

let n = 0
/** A flow key of its own for each load, as each flow version has. */
export const key = (name = 'flow') => ({ flowId: `${name}-${++n}`, version: 1 })

/**
 * Watches the event loop while `fn` runs: the longest gap between ticks of a 10 ms interval. A hostile flow must
 * not stall the worker's event loop.
 */
export async function maxEventLoopGap<T>(fn: () => Promise<T>): Promise<{ result: T; gapMs: number }> {
  let last = performance.now()
  let gap = 0
  const timer = setInterval(() => {
    const t = performance.now()
    gap = Math.max(gap, t - last)
    last = t
  }, 10)
  try {
    const result = await fn()
    return { result, gapMs: Math.max(gap, performance.now() - last) }
  } finally {
    clearInterval(timer)
  }
}

export function expectFailure(r: { ok: boolean; error?: { kind: string; message: string } }, kind: string, message?: RegExp): void {
  expect(r.ok).toBe(false)
  expect(r.error?.kind).toBe(kind)
  if (message) expect(r.error?.message).toMatch(message)
}
