/** The built-in strategy implementations, by type. The strategies issue adds okta, aws_sso, aws_iam, github, aws_lambda… */
import type { Strategy, StrategyRegistry } from '../strategy.js'
import { createHttpStrategy, type HttpStrategyOptions } from './http.js'

export * from './http.js'

export interface BuiltinStrategyOptions {
  readonly http?: HttpStrategyOptions
}

/** A registry with every built-in strategy. */
export function builtinStrategies(options: BuiltinStrategyOptions = {}): StrategyRegistry {
  const all: Strategy[] = [createHttpStrategy(options.http)]
  return new Map(all.map((s) => [s.type, s]))
}
