/**
 * @opensym/sdk — what flow authors and automation use. For now: a typed client for the entities API.
 * The flow-implementation SDK (events, reducers, hooks) arrives with the flow engine.
 */
export { createClient, createTransport, SymApiError, type Call, type ClientOptions, type EntityClient, type FieldError, type FindQuery, type SingletonClient, type SymClient } from './client.js'
export type { BodyOf, ViewOf, EntityKind } from '@opensym/provider-schema'
