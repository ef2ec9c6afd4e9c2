/**
 * The tfplugin6 `Provider` service as a TypeScript interface: one optional handler per RPC, taking the decoded
 * request and returning the response (plain objects with the `.proto`'s snake_case field names; every response
 * field may be left out). A handler that is not implemented answers gRPC UNIMPLEMENTED, which Terraform reports as
 * "The plugin6.(*GRPCProvider).X method is not supported by this plugin" if it ever calls it.
 *
 * Process model (Terraform 1.11): Terraform starts a new provider process for each phase of a command — `plan`
 * starts 3 (schema only; validate walk; plan walk), `apply` 4, `destroy` 5 — so handlers must not rely on state
 * from an earlier process, and start-up work should be lazy.
 *
 * Errors: a thrown error becomes an error diagnostic in the response ("Unexpected provider error") rather than a
 * gRPC error, which Terraform would only show as "Plugin did not respond". Handlers should still return precise
 * diagnostics themselves.
 */
import type { MessageInit } from '../proto/wire.js'
import type {
  ApplyResourceChange_Request,
  ApplyResourceChange_Response,
  CallFunction_Request,
  CallFunction_Response,
  CloseEphemeralResource_Request,
  CloseEphemeralResource_Response,
  ConfigureProvider_Request,
  ConfigureProvider_Response,
  GetFunctions_Request,
  GetFunctions_Response,
  GetMetadata_Request,
  GetMetadata_Response,
  GetProviderSchema_Request,
  GetProviderSchema_Response,
  ImportResourceState_Request,
  ImportResourceState_Response,
  MoveResourceState_Request,
  MoveResourceState_Response,
  OpenEphemeralResource_Request,
  OpenEphemeralResource_Response,
  PlanResourceChange_Request,
  PlanResourceChange_Response,
  Provider,
  ReadDataSource_Request,
  ReadDataSource_Response,
  ReadResource_Request,
  ReadResource_Response,
  RenewEphemeralResource_Request,
  RenewEphemeralResource_Response,
  StopProvider_Request,
  StopProvider_Response,
  UpgradeResourceState_Request,
  UpgradeResourceState_Response,
  ValidateDataResourceConfig_Request,
  ValidateDataResourceConfig_Response,
  ValidateEphemeralResourceConfig_Request,
  ValidateEphemeralResourceConfig_Response,
  ValidateProviderConfig_Request,
  ValidateProviderConfig_Response,
  ValidateResourceConfig_Request,
  ValidateResourceConfig_Response,
} from '../proto/generated/tfplugin6.js'
import type { RequestOf, ResponseOf } from '../proto/wire.js'
import type { Logger } from './logger.js'

/** The name of a tfplugin6 Provider RPC. */
export type ProviderMethodName = keyof typeof Provider

/** What a handler gets besides the request. */
export interface RpcContext {
  /** The RPC being served, e.g. `PlanResourceChange`. */
  readonly method: ProviderMethodName
  /** Aborted when Terraform cancels this call or its connection drops. */
  readonly signal: AbortSignal
  /** Logs with `tf_rpc` and `tf_req_id` fields. */
  readonly log: Logger
}

export type Awaitable<T> = T | Promise<T>

/** A handler of one RPC. */
export type RpcHandler<Req, Res> = (request: Req, context: RpcContext) => Awaitable<MessageInit<Res>>

/**
 * The provider's implementation of tfplugin6. Terraform 1.11 calls, in normal use: GetProviderSchema, the three
 * Validate*Config, ConfigureProvider, UpgradeResourceState, ReadResource, PlanResourceChange, ApplyResourceChange,
 * ImportResourceState and ReadDataSource (so a provider implements at least these), plus StopProvider on Ctrl-C.
 * It never called GetMetadata, GetFunctions, CallFunction, MoveResourceState or the ephemeral RPCs in our runs.
 */
export interface ProviderService {
  /** Lists resource types, data sources and functions without their schemas. Not called by Terraform 1.11 CLI. */
  GetMetadata?: RpcHandler<GetMetadata_Request, GetMetadata_Response>
  /**
   * First call in every process (skipped after the first process when `server_capabilities`
   * `get_provider_schema_optional` is true). Must be the same in every process; it is worth precomputing.
   */
  GetProviderSchema?: RpcHandler<GetProviderSchema_Request, GetProviderSchema_Response>
  /** Checks the provider block. Called before ConfigureProvider, also in the unconfigured validate process. */
  ValidateProviderConfig?: RpcHandler<ValidateProviderConfig_Request, ValidateProviderConfig_Response>
  /** Checks a resource block. Runs in an unconfigured provider (the validate walk): needs no configured state. */
  ValidateResourceConfig?: RpcHandler<ValidateResourceConfig_Request, ValidateResourceConfig_Response>
  /** Checks a data source block. Runs in an unconfigured provider too. */
  ValidateDataResourceConfig?: RpcHandler<ValidateDataResourceConfig_Request, ValidateDataResourceConfig_Response>
  /**
   * Converts stored state (`raw_state.json`, written with schema `version`) to the current schema. Called before
   * every use of stored state, in every process. Must not call remote APIs.
   */
  UpgradeResourceState?: RpcHandler<UpgradeResourceState_Request, UpgradeResourceState_Response>
  /** Configures the provider; called once per process that plans, applies, reads or imports. May be called again. */
  ConfigureProvider?: RpcHandler<ConfigureProvider_Request, ConfigureProvider_Response>
  /** Refreshes a resource; a null `new_state` means it is gone (Terraform then plans to create it). */
  ReadResource?: RpcHandler<ReadResource_Request, ReadResource_Response>
  /**
   * Plans a create (`prior_state` null), update, or destroy (`proposed_new_state` null, only with `plan_destroy`).
   * Called again during apply; the result must match the saved plan.
   */
  PlanResourceChange?: RpcHandler<PlanResourceChange_Request, PlanResourceChange_Response>
  /** Applies a planned create, update or delete (`planned_state` null); the result must conform to the plan. */
  ApplyResourceChange?: RpcHandler<ApplyResourceChange_Request, ApplyResourceChange_Response>
  /** Turns an import id into partial state; Terraform then calls ReadResource on it. */
  ImportResourceState?: RpcHandler<ImportResourceState_Request, ImportResourceState_Response>
  /** Moves state from another resource type (`moved` blocks across types); needs `move_resource_state`. */
  MoveResourceState?: RpcHandler<MoveResourceState_Request, MoveResourceState_Response>
  /** Reads a data source. */
  ReadDataSource?: RpcHandler<ReadDataSource_Request, ReadDataSource_Response>
  ValidateEphemeralResourceConfig?: RpcHandler<ValidateEphemeralResourceConfig_Request, ValidateEphemeralResourceConfig_Response>
  OpenEphemeralResource?: RpcHandler<OpenEphemeralResource_Request, OpenEphemeralResource_Response>
  RenewEphemeralResource?: RpcHandler<RenewEphemeralResource_Request, RenewEphemeralResource_Response>
  CloseEphemeralResource?: RpcHandler<CloseEphemeralResource_Request, CloseEphemeralResource_Response>
  /** Provider functions; Terraform 1.11 learns them from GetProviderSchema's `functions` instead. */
  GetFunctions?: RpcHandler<GetFunctions_Request, GetFunctions_Response>
  CallFunction?: RpcHandler<CallFunction_Request, CallFunction_Response>
  /**
   * Called on interrupt (Ctrl-C), concurrently with running RPCs: should make them finish early and return at
   * once. The process keeps running; Terraform still waits for the running calls and then calls Shutdown.
   */
  StopProvider?: RpcHandler<StopProvider_Request, StopProvider_Response>
}

/** The handlers as the generated service table types them; {@link ProviderService} must stay identical. */
type GeneratedProviderService = {
  [K in ProviderMethodName]?: RpcHandler<RequestOf<(typeof Provider)[K]>, ResponseOf<(typeof Provider)[K]>>
}
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
/** Fails to compile when the hand-written interface and the generated table drift apart. */
export type _ProviderServiceMatchesProto = Same<ProviderService, GeneratedProviderService> extends true ? true : never
const _check: _ProviderServiceMatchesProto = true
void _check
