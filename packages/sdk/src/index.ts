/**
 * @opensym/sdk — what flow authors and automation write against:
 * - the flow SDK (events, reducers, hooks, `ApprovalTemplate`, permissions, notifications, integrations), also
 *   available alone as `@opensym/sdk/flow`; in the sandbox, `@opensym/sdk` means that part;
 * - a typed client for the entities API (`createClient`), for scripts and automation (not inside flows);
 * - `@opensym/sdk/testing`: unit-test helpers for flow implementations.
 */
export { createClient, createTransport, SymApiError, type Call, type ClientOptions, type EntityClient, type FieldError, type FindQuery, type SingletonClient, type SymClient } from './client.js'
export type { BodyOf, ViewOf, EntityKind } from '@opensym/provider-schema'
export * from './flow/index.js'
export { looksLikePython, PYTHON_NOT_RUNNABLE } from './language.js'
