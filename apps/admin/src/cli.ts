/**
 * The admin command: orgs, users, bots and tokens, users' identities in other services, verifying an org's
 * audit chain, the job queues (queues.ts) and delivery to log destinations. `run(argv, io)` is the
 * whole program so tests drive it in process; `main.ts` wires it to the real database and stdout.
 */
import { parseArgs } from 'node:util'
import { AccountError, createBot, createOrg, createUser, findOrg, issueToken, listTokens, revokeToken, type Db } from '@opensym/db'
import { parseDuration } from '@opensym/domain'
import { deleteIdentities, IdentityConflictError, listIdentities, setIdentity, verifyAuditChain } from '@opensym/engine'
import { DeliveryAdminError, deliveryStatus, replayDelivery } from '@opensym/reporting'
import type { Redis } from 'ioredis'
import { QueueAdminError, queuesCommand, QUEUES_USAGE } from './queues.js'

export interface Io {
  out(text: string): void
}

/** What only some commands need. */
export interface AdminEnv {
  /** Redis for `queues` (connected on first use; main.ts: REDIS_URL). */
  readonly redis?: () => Redis
  /** The BullMQ key prefix (QUEUE_PREFIX). Default opensym. */
  readonly queuePrefix?: string
}

/** A usage or input problem: printed as one line, exit code 2. */
class UsageError extends Error {}

const USAGE = `usage: admin <command> [--json]
  org create --slug <slug> [--name <name>]
  user create --org <slug> --email <email> --role admin|member|guest
  bot create --org <slug> --name <name>
  token issue --org <slug> (--bot <name> | --user <email>) [--expires 30d] [--label <label>]
  token revoke <token-id>
  token list [--org <slug>]
  identities list --org <slug> [--user <email>] [--service <service>]
  identities set --org <slug> --user <email> --service <service> --service-id <id> --external-id <id>
  identities delete --org <slug> --user <email> --service <service> [--service-id <id>]
      (how users are known in other services: service okta|aws_sso|aws_iam|github|…, service id = the
       integration's external_id, external id = the user's id there; found by email and stored when first needed)
  audit verify --org <slug>   (recomputes the org's audit hash chain; exit 1 naming the first broken entry)
  log-destinations status --org <slug> [--destination <slug|id>] [--type <type>]
  log-destinations replay --org <slug> --destination <slug|id> [--type <type>] [--from <audit seq>|<ISO time>]
      (delivery to log destinations: cursor, backlog, failures; replay makes a dead destination active again,
       --from sends entries again from that audit entry or time; running workers pick it up within a second)
${QUEUES_USAGE}`

const OPTIONS = {
  json: { type: 'boolean' },
  slug: { type: 'string' },
  name: { type: 'string' },
  org: { type: 'string' },
  email: { type: 'string' },
  role: { type: 'string' },
  bot: { type: 'string' },
  user: { type: 'string' },
  expires: { type: 'string' },
  label: { type: 'string' },
  service: { type: 'string' },
  'service-id': { type: 'string' },
  'external-id': { type: 'string' },
  destination: { type: 'string' },
  type: { type: 'string' },
  from: { type: 'string' },
  limit: { type: 'string' },
  state: { type: 'string' },
  'older-than': { type: 'string' },
  all: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string }

function need(values: Values, key: keyof Values): string {
  const v = values[key]
  if (typeof v !== 'string' || !v) throw new UsageError(`--${key} is required`)
  return v
}

const iso = (d: Date | null) => (d ? d.toISOString() : null)

/** A user of the org by email (or bot name). */
async function findUser(db: Db, orgId: string, orgSlug: string, who: string) {
  const key = who.trim()
  const user = await db.user.findFirst({ where: { orgId, OR: [{ email: key.toLowerCase() }, { username: key }] }, select: { id: true, email: true, username: true } })
  if (!user) throw new AccountError(`no user "${who}" in org ${orgSlug}`)
  return user
}

/** Runs one admin command; returns the process exit code. */
export async function run(argv: readonly string[], db: Db, io: Io, env: AdminEnv = {}): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true })
  } catch (e) {
    io.out(`error: ${(e as Error).message}`)
    return 2
  }
  const values = parsed.values as Values
  const [noun, verb, ...rest] = parsed.positionals
  const print = (json: object, text: string) => io.out(values.json ? JSON.stringify(json) : text)
  if (values.help) {
    io.out(USAGE)
    return 0
  }
  if (!noun) {
    io.out('error: no command given; run with --help for usage')
    return 2
  }
  try {
    if (noun === 'queues') {
      if (!env.redis) throw new UsageError('queues commands need Redis (REDIS_URL)')
      return await queuesCommand(verb, rest, values, { redis: env.redis, prefix: env.queuePrefix ?? 'opensym', out: print })
    }
    switch (`${noun} ${verb ?? ''}`) {
      case 'org create': {
        const org = await createOrg(db, { slug: need(values, 'slug'), name: values.name })
        print({ id: org.id, slug: org.slug, name: org.name, created_at: iso(org.createdAt) }, `created org ${org.slug} (${org.id})`)
        return 0
      }
      case 'user create': {
        const role = need(values, 'role')
        if (role !== 'admin' && role !== 'member' && role !== 'guest') throw new UsageError('--role must be admin, member or guest')
        const user = await createUser(db, { org: need(values, 'org'), email: need(values, 'email'), role })
        print({ id: user.id, email: user.email, role: user.role, type: user.type }, `created ${role} ${user.email} (${user.id})`)
        return 0
      }
      case 'bot create': {
        const bot = await createBot(db, { org: need(values, 'org'), name: need(values, 'name') })
        print({ id: bot.id, name: bot.username, type: bot.type }, `created bot ${bot.username} (${bot.id})`)
        return 0
      }
      case 'token issue': {
        let expiresInSeconds: number | undefined
        if (values.expires !== undefined) {
          expiresInSeconds = parseDuration(values.expires)
          if (!expiresInSeconds) throw new UsageError(`--expires "${values.expires}" is not a duration like 30d, 12h or 90m`)
        }
        const { token, secret, owner } = await issueToken(db, { org: need(values, 'org'), bot: values.bot, user: values.user, expiresInSeconds, label: values.label })
        print(
          { token: secret, id: token.id, owner: owner.username, label: token.label, expires_at: iso(token.expiresAt) },
          `${secret}\n(token ${token.id} for ${owner.username}${token.expiresAt ? `, expires ${token.expiresAt.toISOString()}` : ''}; it is shown only once)`,
        )
        return 0
      }
      case 'token revoke': {
        const id = rest[0]
        if (!id) throw new UsageError('token revoke needs the token id')
        const token = await revokeToken(db, id)
        print({ id: token.id, revoked_at: iso(token.revokedAt) }, `revoked token ${token.id}`)
        return 0
      }
      case 'token list': {
        const tokens = await listTokens(db, { org: values.org })
        const rows = tokens.map((t) => ({
          id: t.id,
          org: t.org.slug,
          owner: t.user.username,
          owner_type: t.user.type,
          label: t.label,
          created_at: iso(t.createdAt),
          expires_at: iso(t.expiresAt),
          revoked_at: iso(t.revokedAt),
          last_used_at: iso(t.lastUsedAt),
        }))
        print(rows, rows.map((r) => `${r.id}  ${r.org}  ${r.owner}  ${r.revoked_at ? 'revoked' : r.expires_at ?? 'no expiry'}  ${r.label ?? ''}`).join('\n') || 'no tokens')
        return 0
      }
      case 'identities list': {
        const org = await findOrg(db, need(values, 'org'))
        const user = values.user ? await findUser(db, org.id, org.slug, values.user) : undefined
        const rows = await listIdentities(db, { orgId: org.id, userId: user?.id, service: values.service })
        const json = rows.map((r) => ({ user: r.user, service: r.service, service_id: r.serviceId, external_id: r.externalUserId, updated_at: iso(r.updatedAt) }))
        print(json, json.map((r) => `${r.user}  ${r.service}:${r.service_id}  ${r.external_id}`).join('\n') || 'no identities')
        return 0
      }
      case 'identities set': {
        const [orgSlug, email, service, serviceId] = [need(values, 'org'), need(values, 'user'), need(values, 'service'), need(values, 'service-id')]
        const externalId = need(values, 'external-id').trim()
        if (!externalId) throw new UsageError('--external-id is required')
        const org = await findOrg(db, orgSlug)
        const user = await findUser(db, org.id, org.slug, email)
        const { previous } = await setIdentity(db, { orgId: org.id, userId: user.id, service, serviceId, externalUserId: externalId })
        const who = user.email ?? user.username
        print(
          { user: who, service, service_id: serviceId, external_id: externalId, previous },
          `${who} is ${externalId} in ${service} ${serviceId}${previous && previous !== externalId ? ` (was ${previous})` : ''}`,
        )
        return 0
      }
      case 'identities delete': {
        const [orgSlug, email, service] = [need(values, 'org'), need(values, 'user'), need(values, 'service')]
        const org = await findOrg(db, orgSlug)
        const user = await findUser(db, org.id, org.slug, email)
        const deleted = await deleteIdentities(db, { orgId: org.id, userId: user.id, service, serviceId: values['service-id'] })
        const who = user.email ?? user.username
        print(
          { user: who, service, service_id: values['service-id'] ?? null, deleted },
          `deleted ${deleted} ${service} identit${deleted === 1 ? 'y' : 'ies'} of ${who}; the next escalation finds it again (getIdentity reducer, then email)`,
        )
        return 0
      }
      case 'audit verify': {
        const org = await findOrg(db, need(values, 'org'))
        const result = await verifyAuditChain(db, org.id)
        const b = result.firstBreak
        if (result.ok || !b) {
          print({ ok: true, org: org.slug, entries: result.entries }, `the audit chain of org ${org.slug} is intact: ${result.entries} entries verified`)
          return 0
        }
        print(
          { ok: false, org: org.slug, entries: result.entries, first_break: { seq: Number(b.seq), id: b.id || null, reason: b.reason } },
          `error: the audit chain of org ${org.slug} is broken at entry ${b.seq}${b.id ? ` (id ${b.id})` : ''}: ${b.reason} (${result.entries} entries before it verified)`,
        )
        return 1
      }
      case 'log-destinations status': {
        const org = await findOrg(db, need(values, 'org'))
        const rows = await deliveryStatus(db, { orgId: org.id, destination: values.destination, type: values.type })
        const json = rows.map((r) => ({
          id: r.id,
          type: r.type,
          slug: r.slug,
          environments: r.environments,
          status: r.status,
          delivered_seq: Number(r.deliveredSeq),
          head_seq: Number(r.headSeq),
          backlog: r.backlog,
          delivered: Number(r.delivered),
          failures: r.failures,
          last_error: r.lastError,
          next_attempt_at: iso(r.nextAttemptAt),
          delivered_at: iso(r.deliveredAt),
        }))
        const line = (r: (typeof json)[number]) =>
          `${r.type} ${r.slug} (${r.id}): ${r.status}, ${r.backlog} pending, at ${r.delivered_seq}/${r.head_seq}${r.failures ? `, ${r.failures} failed attempts, last: ${r.last_error ?? ''}` : ''}`
        print(json, json.map(line).join('\n') || `no log destinations in org ${org.slug}`)
        return 0
      }
      case 'log-destinations replay': {
        const org = await findOrg(db, need(values, 'org'))
        let from: { seq: bigint } | { time: Date } | undefined
        if (values.from !== undefined) {
          const raw = values.from.trim()
          if (/^\d+$/.test(raw)) from = { seq: BigInt(raw) }
          else if (/^\d{4}-\d{2}-\d{2}/.test(raw) && !Number.isNaN(Date.parse(raw))) from = { time: new Date(raw) }
          else throw new UsageError(`--from "${values.from}" is neither an audit entry position nor an ISO time`)
        }
        const r = await replayDelivery(db, { orgId: org.id, destination: need(values, 'destination'), type: values.type, from })
        print(
          { id: r.id, type: r.type, slug: r.slug, previous_status: r.previousStatus, previous_seq: Number(r.previousSeq), delivered_seq: Number(r.deliveredSeq) },
          `${r.type} ${r.slug} is active again${r.deliveredSeq < r.previousSeq ? `; entries after ${r.deliveredSeq} are sent again` : `, resuming after entry ${r.deliveredSeq}`}`,
        )
        return 0
      }
      default:
        throw new UsageError(`unknown command "${[noun, verb].filter(Boolean).join(' ')}"; run with --help for usage`)
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof AccountError || e instanceof IdentityConflictError || e instanceof QueueAdminError || e instanceof DeliveryAdminError) {
      io.out(`error: ${e.message}`)
      return e instanceof UsageError || (e instanceof QueueAdminError && e.usage) ? 2 : 1
    }
    throw e
  }
}
