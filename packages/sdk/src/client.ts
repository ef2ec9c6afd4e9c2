/**
 * A typed client for the entities API. Paths and body shapes come from `@opensym/provider-schema`, so the client
 * cannot drift from the server. Errors arrive as `SymApiError` with the API's code and field errors.
 */
import { randomUUID } from 'node:crypto'
import { resources, type BodyOf, type EntityKind, type ViewOf } from '@opensym/provider-schema'

export interface FieldError {
  readonly field: string
  readonly message: string
}

/** Any non-2xx answer of the API. */
export class SymApiError extends Error {
  override readonly name = 'SymApiError'
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly errors: readonly FieldError[],
    readonly requestId: string,
    readonly isRetryable: boolean,
  ) {
    super(message)
  }
}

export interface ClientOptions {
  /** E.g. `http://127.0.0.1:8080/api/v1`. */
  readonly baseUrl: string
  readonly token: string
  /** Defaults to the global fetch. */
  readonly fetch?: typeof fetch
}

export interface FindQuery {
  readonly slug?: string
  readonly type?: string
}

/** CRUD on one entity collection. Update replaces the whole object, as the API does. */
export interface EntityClient<K extends EntityKind> {
  create(body: BodyOf<K>): Promise<ViewOf<K>>
  get(id: string): Promise<ViewOf<K>>
  find(query?: FindQuery): Promise<ViewOf<K>[]>
  update(id: string, body: BodyOf<K>): Promise<ViewOf<K>>
  delete(id: string): Promise<void>
}

/** The org's single flows filter. */
export interface SingletonClient<K extends EntityKind> {
  create(body: BodyOf<K>): Promise<ViewOf<K>>
  get(): Promise<ViewOf<K>>
  update(body: BodyOf<K>): Promise<ViewOf<K>>
  delete(): Promise<void>
}

type Collections = Exclude<EntityKind, 'flows_filter'>

export interface SymClient {
  readonly entities: { readonly [K in Collections]: EntityClient<K> } & { readonly flows_filter: SingletonClient<'flows_filter'> }
}

interface ErrorBody {
  message?: string
  code?: string
  errors?: FieldError[]
  is_retryable?: boolean
}

/** Sends one request to the API; resolves with the parsed JSON (undefined for 204) or throws `SymApiError`. */
export type Call = <T>(method: string, path: string, body?: unknown) => Promise<T>

/**
 * The HTTP layer every client shares: bearer token, a fresh `X-Sym-Request-ID` per call, JSON in and out, and
 * errors as `SymApiError`. GET and DELETE carry the JSON body `null`, exactly as Sym's Go client sends them.
 */
export function createTransport(options: ClientOptions): Call {
  const base = options.baseUrl.replace(/\/+$/, '')
  const doFetch = options.fetch ?? fetch
  return async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const requestId = randomUUID()
    const res = await doFetch(`${base}/${path.replace(/^\/+/, '')}`, {
      method,
      headers: { authorization: `Bearer ${options.token}`, 'x-sym-request-id': requestId, 'content-type': 'application/json' },
      // fetch forbids a body on GET; the API accepts both.
      body: method === 'GET' ? undefined : JSON.stringify(body ?? null),
    })
    if (res.status === 204) return undefined as T
    const text = await res.text()
    let json: unknown
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {
      json = undefined
    }
    if (!res.ok) {
      const e = (json ?? {}) as ErrorBody
      throw new SymApiError(
        e.message ?? `${method} ${path} failed with status ${res.status}`,
        res.status,
        e.code ?? 'UNKNOWN',
        e.errors ?? [],
        res.headers.get('x-sym-request-id') ?? requestId,
        e.is_retryable ?? res.status >= 500,
      )
    }
    return json as T
  }
}

export function createClient(options: ClientOptions): SymClient {
  const call = createTransport(options)

  const collection = <K extends EntityKind>(kind: K): EntityClient<K> => {
    const path = `entities/${resources[kind].path}`
    return {
      create: (body) => call('POST', path, body),
      get: (id) => call('GET', `${path}/${encodeURIComponent(id)}`),
      find: (query = {}) => {
        const params = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => typeof e[1] === 'string'))
        const qs = params.toString()
        return call('GET', qs ? `${path}?${qs}` : path)
      },
      update: (id, body) => call('PATCH', `${path}/${encodeURIComponent(id)}`, body),
      delete: (id) => call('DELETE', `${path}/${encodeURIComponent(id)}`),
    }
  }
  const singleton = <K extends EntityKind>(kind: K): SingletonClient<K> => {
    const path = `entities/${resources[kind].path}`
    return {
      create: (body) => call('POST', path, body),
      get: () => call('GET', path),
      update: (body) => call('PATCH', path, body),
      delete: () => call('DELETE', path),
    }
  }

  return {
    entities: {
      integration: collection('integration'),
      target: collection('target'),
      strategy: collection('strategy'),
      flow: collection('flow'),
      environment: collection('environment'),
      runtime: collection('runtime'),
      secret_source: collection('secret_source'),
      secret: collection('secret'),
      error_logger: collection('error_logger'),
      log_destination: collection('log_destination'),
      flows_filter: singleton('flows_filter'),
    },
  }
}
