/**
 * The custom strategy of `backoffice-access` (see `sym_strategy.backoffice` in main.tf): grants and removes a role
 * in an in-house back-office through its admin API.
 *
 * The platform calls three functions from this module:
 *   - `fetchRemoteIdentity`: who the requester is in the back-office, when no ID is stored for them yet;
 *   - `escalate`: on approval, give the requester the chosen target's role;
 *   - `deescalate`: when the requested time is up, or on Revoke, take the role away again.
 * What `escalate` and `deescalate` return is kept as the step's output, for hooks and the audit log. A thrown
 * error fails the step (nothing is recorded as granted) and is reported to the environment's error logger.
 *
 * The admin API assumed here: `GET /users?email=…` → `{"id": "…"}` (404 when unknown),
 * `PUT /users/{id}/roles/{role}` with `{"expires_at": …}` to grant, `DELETE /users/{id}/roles/{role}` to remove
 * (404 when the user does not have the role). Adapt the three functions to your system's API.
 *
 * The types come from `@opensym/sdk/flow` (`npm install @opensym/sdk` for your editor; the platform provides it
 * when the code runs). Its testing helpers (`runEscalate`, `runDeescalate`, `runFetchRemoteIdentity` from
 * `@opensym/sdk/testing`) run these functions in a unit test, with a `fetch` handler standing in for the API.
 */
import type { AccessStrategy, Event, FetchResponse, Secret, User } from '@opensym/sdk/flow'

/** JSON the platform keeps as the step's output. */
export type StepOutput = Record<string, string | boolean | null>

/** One call to the back-office admin API, authenticated with the first secret of the integration. */
async function callApi(strategy: AccessStrategy, method: string, path: string, body?: unknown): Promise<FetchResponse> {
  const { api_url: baseUrl, secrets } = strategy.integration.settings
  if (typeof baseUrl !== 'string' || !baseUrl) throw new Error('The back-office integration has no `api_url` setting (see sym_integration.backoffice in main.tf).')
  const apiKey = Array.isArray(secrets) ? (secrets as readonly Secret[])[0] : undefined
  if (!apiKey) throw new Error('The back-office API key must be the first sym_secret in `secret_ids_json` (see main.tf).')
  return strategy.fetch(`${baseUrl.replace(/\/+$/, '')}${path}`, {
    method,
    headers: { authorization: `Bearer ${await apiKey.retrieveValue()}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
}

/** Throws with the API's answer (shortened), which ends up in the error logger's channel. */
async function fail(what: string, response: FetchResponse): Promise<never> {
  const detail = (await response.text()).slice(0, 300)
  throw new Error(`${what}: the back-office API answered ${response.status}${detail ? `: ${detail}` : ''}`)
}

/** The role to grant, from the chosen target's settings (`sym_target.role` in main.tf). */
function roleOf(event: Event): string {
  const target = event.payload.fields.target
  const role = target?.settings.role
  if (!role) throw new Error(`The target ${target ? `"${target.name}" ` : ''}has no \`role\` setting (see sym_target.role in main.tf).`)
  return role
}

const userRolePath = (userId: string, role: string) => `/users/${encodeURIComponent(userId)}/roles/${encodeURIComponent(role)}`

/** Back-office users are found by the email they share with their Sym user; `null` when there is none. */
export async function fetchRemoteIdentity(user: User, strategy: AccessStrategy): Promise<string | null> {
  if (!user.email) return null
  const response = await callApi(strategy, 'GET', `/users?email=${encodeURIComponent(user.email)}`)
  if (response.status === 404) return null
  if (!response.ok) return fail(`Looking up ${user.email}`, response)
  const found = (await response.json()) as { id?: unknown }
  return typeof found.id === 'string' && found.id !== '' ? found.id : null
}

/**
 * Gives the requester the target's role. PUT, so that a retried escalate (after a timeout, say) does not fail on a
 * role that the first attempt already granted. The role also expires on the back-office's side at the end of the
 * requested duration, so that access ends even if de-escalation cannot reach the back-office.
 */
export async function escalate(_targetId: string, event: Event, strategy: AccessStrategy): Promise<StepOutput> {
  const userId = await strategy.getRequesterIdentity(event)
  const role = roleOf(event)
  const seconds = event.payload.fields.duration
  const expiresAt = typeof seconds === 'number' ? new Date(Date.now() + seconds * 1000).toISOString() : null
  const response = await callApi(strategy, 'PUT', userRolePath(userId, role), { expires_at: expiresAt })
  if (!response.ok) return fail(`Granting ${role} to ${userId}`, response)
  return { user_id: userId, role, expires_at: expiresAt }
}

/**
 * Takes the role away. A 404 means it is already gone (it expired on its own, or someone removed it by hand),
 * which counts as success: de-escalation must be safe to repeat.
 */
export async function deescalate(_targetId: string, event: Event, strategy: AccessStrategy): Promise<StepOutput> {
  const userId = await strategy.getRequesterIdentity(event)
  const role = roleOf(event)
  const response = await callApi(strategy, 'DELETE', userRolePath(userId, role))
  if (!response.ok && response.status !== 404) return fail(`Removing ${role} from ${userId}`, response)
  return { user_id: userId, role, already_removed: response.status === 404 }
}
