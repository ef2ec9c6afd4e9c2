/**
 * go-plugin's start-up contract with Terraform: the magic cookie, protocol version negotiation, the one handshake
 * line on stdout, and the `TF_REATTACH_PROVIDERS` value of debug mode. Pure functions; `serve` does the I/O.
 */

/** The environment variable and value Terraform sets to show that it launched the plugin. */
export const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE'
export const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2'

/** go-plugin's own protocol version: the first field of the handshake line, always 1. */
export const CORE_PROTOCOL_VERSION = 1
/** The Terraform plugin protocol this package speaks. */
export const PLUGIN_PROTOCOL_VERSION = 6

/** What go-plugin prints when a plugin binary is run by hand; the plugin then exits 1. */
export const NOT_LAUNCHED_BY_TERRAFORM_MESSAGE =
  'This binary is a plugin. These are not meant to be executed directly.\n' +
  'Please execute the program that consumes these plugins, which will\n' +
  'load any plugins automatically\n'

export type Environment = Readonly<Record<string, string | undefined>>

export function hasMagicCookie(env: Environment): boolean {
  return env[MAGIC_COOKIE_KEY] === MAGIC_COOKIE_VALUE
}

export interface VersionNegotiation {
  /** The version to announce: always 6, which is all this package speaks. */
  readonly version: number
  /** The versions Terraform offered (`PLUGIN_PROTOCOL_VERSIONS`, in no particular order), if it said. */
  readonly offered: readonly number[] | undefined
  /** False when Terraform offered versions and 6 is not among them; Terraform then reports the mismatch. */
  readonly compatible: boolean
}

/**
 * Negotiates from `PLUGIN_PROTOCOL_VERSIONS` (e.g. `6,5` or `5,6`: a set). As go-plugin does, a plugin that
 * shares no version with the client still announces its own and leaves the error to the client, whose message
 * ("Incompatible API version with plugin") names both sides.
 */
export function negotiateVersion(env: Environment): VersionNegotiation {
  const raw = env.PLUGIN_PROTOCOL_VERSIONS
  if (raw === undefined || raw.trim() === '') return { version: PLUGIN_PROTOCOL_VERSION, offered: undefined, compatible: true }
  const offered = raw
    .split(',')
    .map((v) => Number.parseInt(v.trim(), 10))
    .filter((v) => Number.isInteger(v))
  return { version: PLUGIN_PROTOCOL_VERSION, offered, compatible: offered.includes(PLUGIN_PROTOCOL_VERSION) }
}

export type Network = 'tcp' | 'unix'

/**
 * `1|6|tcp|127.0.0.1:PORT|grpc|CERT` (no newline): CERT is the server certificate's DER in standard base64
 * without padding (Go's `RawStdEncoding`; padded or URL-safe base64 fails whenever the length is not a multiple of
 * 3), or empty when serving without TLS.
 */
export function handshakeLine(network: Network, address: string, certDer: Uint8Array | undefined, version = PLUGIN_PROTOCOL_VERSION): string {
  const cert = certDer ? Buffer.from(certDer).toString('base64').replace(/=+$/, '') : ''
  return [CORE_PROTOCOL_VERSION, version, network, address, 'grpc', cert].join('|')
}

/** One provider's entry in `TF_REATTACH_PROVIDERS` (go-plugin's ReattachConfig as JSON). */
export interface ReattachConfig {
  readonly Protocol: 'grpc'
  readonly ProtocolVersion: number
  readonly Pid: number
  /** True: Terraform neither starts nor stops the process. */
  readonly Test: boolean
  readonly Addr: { readonly Network: Network; readonly String: string }
}

/** The JSON value of `TF_REATTACH_PROVIDERS` for one provider, keyed by its full source address. */
export function reattachProvidersJson(providerAddress: string, network: Network, address: string, pid: number): string {
  const config: ReattachConfig = {
    Protocol: 'grpc',
    ProtocolVersion: PLUGIN_PROTOCOL_VERSION,
    Pid: pid,
    Test: true,
    Addr: { Network: network, String: address },
  }
  return JSON.stringify({ [providerAddress]: config })
}

/** What debug mode prints: how to point Terraform at the running provider. */
export function debugInstructions(providerAddress: string, network: Network, address: string, pid: number): string {
  const json = reattachProvidersJson(providerAddress, network, address, pid)
  return (
    'Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n' +
    `\tTF_REATTACH_PROVIDERS='${json.replace(/'/g, `'\\''`)}'\n\n` +
    'Terraform then uses this process, without TLS, for every command in that shell. Stop it with Ctrl-C.\n'
  )
}
