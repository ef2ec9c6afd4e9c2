/**
 * The entry of the packaged executable, made into a V8 startup snapshot by `npm run build:provider` (the single
 * executable's `useSnapshot`). It runs once, at build time, under `node --build-snapshot`: every module is loaded,
 * the provider's schemas and handlers are built, and the RPCs that need no API are run once on sample values, so
 * that their compiled bytecode is in the snapshot too; then the heap is saved into the executable. Each start of
 * the executable restores that heap and only serves, which saves every provider process (Terraform starts 3–5 per
 * command) loading modules, building schemas and compiling the request path. Every start deserialises all of the
 * heap, so what only some processes need (the GetProviderSchema answer) is not kept in it.
 *
 * So nothing here may depend on the process that will run it: the environment is read when a handler needs it
 * (`process.env` is then the same object, holding the run-time environment), the certificate and the socket are
 * made by `run`, and the built-in modules Node cannot put in a snapshot (http, https, tls, http2) are loaded only
 * when serving. The warm-up never configures the served provider (ConfigureProvider is warmed on another one, on
 * which no resource handler runs), so no handler can reach the API.
 */
import { lookup } from 'node:dns'
import { startupSnapshot } from 'node:v8'
import { tfplugin6, type MessageInit, type RequestOf, type ResponseOf } from '@opensym/tfplugin/proto'
import { providerConfig } from '@opensym/provider-schema'
import { CtyValue, encodeMsgpack } from '@opensym/tfplugin/cty'
import { schemaType } from '@opensym/tfplugin/runtime'
import { createLogger, generateServerCertificate, type ProviderService, type RpcContext } from '@opensym/tfplugin/transport'
import { providerService, run } from './executable.js'
import { SymProvider } from './plugin.js'
import { providerConfigSchema } from './values.js'

const provider = providerService(new SymProvider({ env: process.env }))

type Methods = typeof tfplugin6.Provider
type Method = keyof Methods

/** One RPC as the transport makes it: the request through its codec, the answer through its codec. */
async function rpc<M extends Method>(method: M, request: MessageInit<RequestOf<Methods[M]>>, service: ProviderService = provider): Promise<ResponseOf<Methods[M]>> {
  const def = tfplugin6.Provider[method] as unknown as {
    request: { encode(m: unknown): { finish(): Buffer }; decode(b: Uint8Array): unknown }
    response: { encode(m: unknown): { finish(): Buffer }; decode(b: Uint8Array): unknown }
  }
  const handler = service[method] as ((request: unknown, context: RpcContext) => unknown) | undefined
  if (!handler) throw new Error(`warm-up: the provider has no ${method}`)
  const context: RpcContext = { method, signal: new AbortController().signal, log: createLogger({ module: 'sym', threshold: 'off' }) }
  const response = await handler(def.request.decode(def.request.encode(request).finish()), context)
  return def.response.decode(def.response.encode(response ?? {}).finish()) as ResponseOf<Methods[M]>
}

/** An access flow as a state file holds it; attributes a resource does not have are ignored by the state upgrade. */
const SAMPLE_STATE = {
  id: '00000000-0000-4000-8000-000000000000',
  name: 'warm-up',
  label: 'Warm-up',
  type: 'okta',
  implementation: 'export function getPermissions() { return {} }\n',
  environment_id: '00000000-0000-4000-8000-000000000001',
  vars: { request_channel: '#sym-requests' },
  settings: { group_id: '00g1abcd2EFGHijkl3m4' },
  params: [
    {
      strategy_id: '00000000-0000-4000-8000-000000000002',
      allow_revoke: true,
      allowed_sources: ['slack', 'api'],
      prompt_field: [
        { name: 'reason', type: 'string', label: 'Why?', required: true },
        { name: 'duration', type: 'duration', allowed_values: ['1h', '1d'], required: true },
      ],
    },
  ],
}

/** The certificate, then every resource type through what the validate and plan processes do: state upgrade, validation, plans. */
async function warmUp(): Promise<void> {
  // What every start runs before its handshake (the key pair made here is thrown away).
  generateServerCertificate()
  // net's listen looks its host up (dns.lookup returns an IP address as it is) and would load dns at every start.
  await new Promise<void>((resolve, reject) => lookup('127.0.0.1', (error) => (error ? reject(error) : resolve())))
  // A provider of its own for what the served one must not keep: ConfigureProvider (the served one is never
  // configured at build time), and the GetProviderSchema answer, which only the first provider process of a
  // command is asked for (in the snapshot, every process would deserialise it). Garbage once the warm-up is done.
  const other = providerService(new SymProvider({ env: { SYM_JWT: 'warm-up' } }))
  const schema = await rpc('GetProviderSchema', {}, other)
  await rpc('ValidateProviderConfig', {})
  // Resolves the token and makes the API client; nothing is called (no resource handler runs on this provider).
  const config = encodeMsgpack(CtyValue.object({ org: CtyValue.string('warm-up'), jwt_env_var: CtyValue.null, api_url: CtyValue.null }), schemaType(providerConfigSchema(providerConfig)))
  const diagnostics = (await rpc('ConfigureProvider', { config: { msgpack: config } }, other)).diagnostics
  if (diagnostics.length) throw new Error(`warm-up: ConfigureProvider answered ${JSON.stringify(diagnostics)}`)
  const json = new TextEncoder().encode(JSON.stringify(SAMPLE_STATE))
  for (const [typeName, resource] of Object.entries(schema.resource_schemas)) {
    const upgraded = await rpc('UpgradeResourceState', { type_name: typeName, version: resource.version, raw_state: { json } })
    const value = upgraded.upgraded_state
    if (!value?.msgpack.length) continue
    await rpc('ValidateResourceConfig', { type_name: typeName, config: value })
    await rpc('PlanResourceChange', { type_name: typeName, config: value, proposed_new_state: value, prior_state: { msgpack: Uint8Array.of(0xc0) } })
    await rpc('PlanResourceChange', { type_name: typeName, config: value, proposed_new_state: value, prior_state: value })
  }
}

if (startupSnapshot.isBuildingSnapshot()) {
  // The snapshot is taken once this script and the promises it started are done.
  warmUp().catch((error: unknown) => {
    // A warm-up that fails costs speed, not correctness: say so in the build output and carry on.
    process.stderr.write(`provider snapshot warm-up failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  })
  startupSnapshot.setDeserializeMainFunction(() => run(provider))
} else {
  run(provider)
}
