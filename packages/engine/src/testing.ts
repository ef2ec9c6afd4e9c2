/**
 * A strategy for tests (`@opensym/engine/testing`): keeps the access it grants in memory, records every call, and
 * can be told to fail or to leave a removal undone.
 */
import { RetryableStrategyError, type Strategy, type StrategyCall, type StrategyOutput } from './strategy.js'

export interface RecordedCall {
  readonly op: 'identity' | 'escalate' | 'deescalate' | 'isGranted'
  readonly runId: string | undefined
  readonly identity: string | undefined
  readonly target: string
  readonly payload: Readonly<Record<string, unknown>> | undefined
  readonly at: Date
}

export interface RecordingStrategyOptions {
  /** The strategy type it stands in for. Default `http`. */
  readonly type?: string
  /** Whether it can read the target back (`isGranted`). Default false, like http. */
  readonly readBack?: boolean
}

type Failure = Error | ((call: StrategyCall) => Error | undefined)

export class RecordingStrategy implements Strategy {
  readonly type: string
  readonly calls: RecordedCall[] = []
  /** `identity|target slug` of every access in place. */
  readonly granted = new Set<string>()
  /** When false, deescalate answers success but removes nothing (a revocation that fails silently). */
  removes = true
  /** Errors the next calls of each kind throw, in order. */
  readonly failures: { escalate: Failure[]; deescalate: Failure[] } = { escalate: [], deescalate: [] }
  isGranted?: (call: StrategyCall) => Promise<boolean>

  constructor(options: RecordingStrategyOptions = {}) {
    this.type = options.type ?? 'http'
    if (options.readBack) {
      this.isGranted = async (call) => {
        this.record('isGranted', call)
        return this.granted.has(key(call))
      }
    }
  }

  async identity(call: Omit<StrategyCall, 'identity' | 'payload'>): Promise<string> {
    this.record('identity', call)
    return call.subject.email ?? call.subject.username
  }

  async escalate(call: StrategyCall): Promise<StrategyOutput> {
    this.record('escalate', call)
    this.throwIfTold('escalate', call)
    this.granted.add(key(call))
    return { body: { granted: key(call) }, errors: [] }
  }

  async deescalate(call: StrategyCall): Promise<StrategyOutput> {
    this.record('deescalate', call)
    this.throwIfTold('deescalate', call)
    if (this.removes) this.granted.delete(key(call))
    return { body: { removed: key(call) }, errors: [] }
  }

  /** Calls of one kind, optionally for one run only. */
  callsOf(op: RecordedCall['op'], runId?: string): RecordedCall[] {
    return this.calls.filter((c) => c.op === op && (runId === undefined || c.runId === runId))
  }

  private throwIfTold(op: 'escalate' | 'deescalate', call: StrategyCall): void {
    const next = this.failures[op].shift()
    const err = typeof next === 'function' ? next(call) : next
    if (err) throw err
  }

  private record(op: RecordedCall['op'], call: Omit<StrategyCall, 'identity' | 'payload'> & Partial<Pick<StrategyCall, 'identity' | 'payload'>>): void {
    const run = (call.payload?.run as { srn?: string } | undefined)?.srn
    this.calls.push({ op, runId: run?.split(':').at(-1), identity: call.identity, target: call.target.slug, payload: call.payload, at: new Date() })
  }
}

const key = (call: StrategyCall) => `${call.identity}|${call.target.slug}`

export { RetryableStrategyError }
