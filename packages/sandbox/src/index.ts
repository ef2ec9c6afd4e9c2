/**
 * @opensym/sandbox: runs flow implementations (TypeScript/JavaScript modules written with @opensym/sdk) in
 * isolated-vm isolates with time and memory limits. The worker process must run Node with `--no-node-snapshot`.
 *
 * - `createSandbox(options)` → `load(flowKey, source)` → `callReducer` / `callIdentity` / `callPrefetch` / `callHook`;
 *   `loadStrategy(strategyKey, source)` → `fetchRemoteIdentity` / `escalate` / `deescalate` (custom strategies);
 * - `compileFlow`, `checkImplementation` (also as `@opensym/sandbox/compiler`, without isolated-vm): esbuild only;
 * - `legacyRouting`: what a legacy `getApprovers` destination means as permissions and notifications.
 */
export {
  checkImplementation,
  compileFlow,
  looksLikePython,
  PYTHON_NOT_RUNNABLE,
  SDK_SPECIFIERS,
  type CompileDiagnostic,
  type CompileResult,
  type ImplementationCheck,
} from './compiler.js'
export { legacyRouting } from './routing.js'
export {
  createSandbox,
  type CallOptions,
  type CallResult,
  type EventReducerName,
  type FailureKind,
  type FlowKey,
  type HostCallContext,
  type HostHandlers,
  type LoadedFlow,
  type LoadedFlowsFilter,
  type LoadFlowsFilterResult,
  type LoadedStrategy,
  type LoadResult,
  type LoadStrategyResult,
  type LogLine,
  type Sandbox,
  type SandboxFailure,
  type SandboxOptions,
  type SandboxStats,
  type StrategyCallOptions,
  type StrategyHostCallContext,
  type StrategyHostHandlers,
} from './sandbox.js'
export type { ExportSummary, FlowsFilterRequest, IdentityRequestData } from '@opensym/sdk/runtime'
export type { ReducerResults } from '@opensym/sdk/validation'
