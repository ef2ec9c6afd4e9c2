/**
 * A local fake of the AWS services OpenSym calls, on one endpoint (point every SDK client's `endpoint` at it):
 * STS `AssumeRole`, IAM (group membership), IAM Identity Center (sso-admin account assignments with their
 * asynchronous status; identitystore users and group memberships), Lambda `Invoke` and Secrets Manager
 * `GetSecretValue`. It follows reference saas-apis.md §1 and §3–§5:
 *
 * - Protocols: JSON 1.1 (`X-Amz-Target: SWBExternalService.*`, `AWSIdentityStore.*`, `secretsmanager.*`; epoch-second
 *   timestamps; errors `{"__type", "message"}`), Query/XML (IAM `Version=2010-05-08`, STS `2011-06-15`; `<member>`
 *   lists; `<ErrorResponse>`), REST-JSON for Lambda (`POST /2015-03-31/functions/{name}/invocations`, errors in
 *   `x-amzn-ErrorType`). Every response has `x-amzn-RequestId`.
 * - Auth: a SigV4 `Authorization` header must be present (`MissingAuthenticationToken` otherwise), scoped to the
 *   service's signing name, with a known access key: one of `accessKeys`, or a session key minted by `AssumeRole`
 *   together with its `X-Amz-Security-Token` (not expired). Requests record their principal: the access key, or
 *   the assumed role's ARN. Signatures themselves are not verified.
 * - Faults: `failWith(service, operation, {code, status, times})` answers in the service's protocol (e.g.
 *   `ThrottlingException`, `Throttling`, `TooManyRequestsException` 429, `ConflictException`); the generic
 *   `fail({...})` of every fake adds delays, dropped connections and raw responses.
 */
import { randomBytes } from 'node:crypto'
import { randomHex, startFakeServer, uuid, type FakeRequest, type FakeResponse, type FakeServer } from './core.js'

export type FakeAwsService = 'sts' | 'iam' | 'sso-admin' | 'identitystore' | 'lambda' | 'secretsmanager'

/** The SigV4 signing name each service's requests must be scoped to. */
const SIGNING_NAMES: Record<FakeAwsService, string> = {
  sts: 'sts',
  iam: 'iam',
  'sso-admin': 'sso',
  identitystore: 'identitystore',
  lambda: 'lambda',
  secretsmanager: 'secretsmanager',
}
const JSON_PREFIXES: Record<string, FakeAwsService> = { SWBExternalService: 'sso-admin', AWSIdentityStore: 'identitystore', secretsmanager: 'secretsmanager' }
const PROTOCOL: Record<FakeAwsService, 'json' | 'query' | 'rest-json'> = {
  sts: 'query',
  iam: 'query',
  'sso-admin': 'json',
  identitystore: 'json',
  lambda: 'rest-json',
  secretsmanager: 'json',
}
const XMLNS: Record<string, string> = { iam: 'https://iam.amazonaws.com/doc/2010-05-08/', sts: 'https://sts.amazonaws.com/doc/2011-06-15/' }
const AUTH_RE = /^AWS4-HMAC-SHA256 Credential=([^/\s]+)\/(\d{8})\/([^/\s]+)\/([^/\s]+)\/aws4_request,\s*SignedHeaders=[a-z0-9;-]+,\s*Signature=[0-9a-f]{64}$/

/** An AWS error the fake answers with, in the protocol of the service. */
export class AwsFakeError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly extra: Readonly<Record<string, unknown>> = {},
    readonly type: 'Sender' | 'Receiver' = status >= 500 ? 'Receiver' : 'Sender',
  ) {
    super(message)
  }
}

export interface AwsErrorSpec {
  readonly code: string
  readonly message?: string
  /** Default 400 (AWS's status for most client errors; the SDK picks the class by code). */
  readonly status?: number
  readonly times?: number
  readonly headers?: Readonly<Record<string, string>>
  /** Extra members of a JSON error (`Reason`, `RetryAfterSeconds`…). */
  readonly extra?: Readonly<Record<string, unknown>>
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
/** `<tag>value</tag>` for every defined member, recursively; arrays as `<member>` lists. */
function xml(value: unknown): string {
  if (value === undefined || value === null) return ''
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value)) return value.map((v) => `<member>${xml(v)}</member>`).join('')
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `<${k}>${xml(v)}</${k}>`)
      .join('')
  }
  return typeof value === 'string' ? esc(value) : typeof value === 'number' || typeof value === 'boolean' ? String(value) : ''
}

const epoch = (d: Date) => d.getTime() / 1000

// ---------------------------------------------------------------------------------------------------------------
// STS

export interface FakeRole {
  readonly arn: string
  /** The `ExternalId` the trust policy requires, if any. */
  readonly externalId?: string
  /** Longest `DurationSeconds` allowed. Default 3600. */
  readonly maxSessionDurationSeconds?: number
  /** Issued sessions expire after this many seconds instead of `DurationSeconds` (to test refreshing). */
  readonly expiresInSeconds?: number
}

export interface FakeSession {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken: string
  readonly roleArn: string
  readonly sessionName: string
  readonly externalId: string | undefined
  readonly expiration: Date
}

export class FakeSts {
  readonly roles = new Map<string, FakeRole>()
  /** Sessions by access key id. */
  readonly sessions = new Map<string, FakeSession>()
  constructor(private readonly now: () => number) {}

  addRole(role: FakeRole): void {
    this.roles.set(role.arn, role)
  }

  assumeRole(form: URLSearchParams, caller: string): Record<string, unknown> {
    const roleArn = form.get('RoleArn') ?? ''
    const sessionName = form.get('RoleSessionName') ?? ''
    if (!roleArn) throw new AwsFakeError('ValidationError', "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
    if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) throw new AwsFakeError('ValidationError', `1 validation error detected: Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`)
    const role = this.roles.get(roleArn)
    const externalId = form.get('ExternalId') ?? undefined
    if (!role || (role.externalId !== undefined && role.externalId !== externalId)) {
      throw new AwsFakeError('AccessDenied', `User: ${caller} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`, 403)
    }
    const duration = Number(form.get('DurationSeconds') ?? 3600)
    if (!Number.isInteger(duration) || duration < 900) throw new AwsFakeError('ValidationError', `1 validation error detected: Value '${form.get('DurationSeconds')}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`)
    if (duration > (role.maxSessionDurationSeconds ?? 3600)) throw new AwsFakeError('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.')
    const session: FakeSession = {
      accessKeyId: `ASIA${randomHex(8).toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(48).toString('base64'),
      roleArn,
      sessionName,
      externalId,
      expiration: new Date(this.now() + (role.expiresInSeconds ?? duration) * 1000),
    }
    this.sessions.set(session.accessKeyId, session)
    const account = roleArn.split(':')[4]
    const roleName = roleArn.split('/').at(-1)
    return {
      AssumedRoleUser: { Arn: `arn:aws:sts::${account}:assumed-role/${roleName}/${sessionName}`, AssumedRoleId: `AROA${randomHex(8).toUpperCase()}:${sessionName}` },
      Credentials: { AccessKeyId: session.accessKeyId, SecretAccessKey: session.secretAccessKey, SessionToken: session.sessionToken, Expiration: session.expiration },
    }
  }

  reset(): void {
    this.roles.clear()
    this.sessions.clear()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// IAM

export interface FakeIamTag {
  readonly Key: string
  readonly Value: string
}
export interface FakeIamUser {
  readonly UserName: string
  readonly UserId: string
  readonly Arn: string
  readonly Path: string
  readonly CreateDate: Date
  /** Returned by `GetUser` only (IAM's list operations leave tags out). */
  readonly Tags?: readonly FakeIamTag[]
}
export interface FakeIamGroup {
  readonly GroupName: string
  readonly GroupId: string
  readonly Arn: string
  readonly Path: string
  readonly CreateDate: Date
  readonly members: Set<string>
}

export class FakeIam {
  readonly users = new Map<string, FakeIamUser>()
  readonly groups = new Map<string, FakeIamGroup>()
  /** `LimitExceeded` past this many groups per user. */
  groupsPerUser = 10
  constructor(private readonly accountId: string) {}

  addUser(name: string, path = '/', tags?: Readonly<Record<string, string>>): FakeIamUser {
    const user: FakeIamUser = {
      UserName: name,
      UserId: `AIDA${randomHex(8).toUpperCase()}`,
      Arn: `arn:aws:iam::${this.accountId}:user${path}${name}`,
      Path: path,
      CreateDate: new Date(),
      ...(tags ? { Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) } : {}),
    }
    this.users.set(name, user)
    return user
  }

  addGroup(name: string, path = '/'): FakeIamGroup {
    const group = { GroupName: name, GroupId: `AGPA${randomHex(8).toUpperCase()}`, Arn: `arn:aws:iam::${this.accountId}:group${path}${name}`, Path: path, CreateDate: new Date(), members: new Set<string>() }
    this.groups.set(name, group)
    return group
  }

  isMember(group: string, user: string): boolean {
    return this.groups.get(group)?.members.has(user) ?? false
  }

  private user(name: string | null): FakeIamUser {
    const u = name ? this.users.get(name) : undefined
    if (!u) throw new AwsFakeError('NoSuchEntity', `The user with name ${name ?? ''} cannot be found.`, 404)
    return u
  }

  private group(name: string | null): FakeIamGroup {
    const g = name ? this.groups.get(name) : undefined
    if (!g) throw new AwsFakeError('NoSuchEntity', `The group with name ${name ?? ''} cannot be found.`, 404)
    return g
  }

  handle(action: string, form: URLSearchParams): Record<string, unknown> | undefined {
    const pub = ({ members: _m, ...g }: FakeIamGroup) => g
    const listed = ({ Tags: _t, ...u }: FakeIamUser) => u
    switch (action) {
      case 'AddUserToGroup': {
        const group = this.group(form.get('GroupName'))
        const user = this.user(form.get('UserName'))
        if (!group.members.has(user.UserName)) {
          const count = [...this.groups.values()].filter((g) => g.members.has(user.UserName)).length
          if (count >= this.groupsPerUser) throw new AwsFakeError('LimitExceeded', `Cannot exceed quota for GroupsPerUser: ${this.groupsPerUser}`, 409)
          group.members.add(user.UserName)
        }
        return undefined
      }
      case 'RemoveUserFromGroup': {
        const group = this.group(form.get('GroupName'))
        const user = this.user(form.get('UserName'))
        group.members.delete(user.UserName)
        return undefined
      }
      case 'GetGroup': {
        const group = this.group(form.get('GroupName'))
        const users = [...group.members].map((n) => this.users.get(n)).filter((u): u is FakeIamUser => !!u).map(listed)
        const page = paginate(users, form.get('Marker'), Number(form.get('MaxItems') ?? 100))
        return { Group: pub(group), Users: page.items, IsTruncated: page.next !== undefined, Marker: page.next }
      }
      case 'GetUser': {
        const { Tags, ...user } = this.user(form.get('UserName'))
        // Tags come last in IAM's GetUser result, and are absent (not empty) for an untagged user.
        return { User: Tags?.length ? { ...user, Tags } : user }
      }
      case 'ListGroupsForUser': {
        const user = this.user(form.get('UserName'))
        const groups = [...this.groups.values()].filter((g) => g.members.has(user.UserName)).map(pub)
        const page = paginate(groups, form.get('Marker'), Number(form.get('MaxItems') ?? 100))
        return { Groups: page.items, IsTruncated: page.next !== undefined, Marker: page.next }
      }
      default:
        throw new AwsFakeError('InvalidAction', `Could not find operation ${action} for version 2010-05-08`)
    }
  }

  reset(): void {
    this.users.clear()
    this.groups.clear()
    this.groupsPerUser = 10
  }
}

/** Offset paging with opaque-looking markers. */
function paginate<T>(items: readonly T[], marker: string | null | undefined, size: number): { items: T[]; next: string | undefined } {
  const start = marker ? Number(Buffer.from(marker, 'base64url').toString()) : 0
  const n = Number.isFinite(size) && size > 0 ? size : 100
  const slice = items.slice(start, start + n)
  const next = start + n < items.length ? Buffer.from(String(start + n)).toString('base64url') : undefined
  return { items: slice, next }
}

// ---------------------------------------------------------------------------------------------------------------
// IAM Identity Center: identitystore

export interface FakeSsoUser {
  readonly UserId: string
  readonly UserName: string
  readonly DisplayName: string
  readonly Emails: Array<{ Value: string; Type: string; Primary: boolean }>
  readonly UserStatus: 'ENABLED' | 'DISABLED'
}

interface StoreState {
  users: Map<string, FakeSsoUser>
  groups: Map<string, { GroupId: string; DisplayName: string }>
  memberships: Map<string, { MembershipId: string; GroupId: string; UserId: string }>
}

/** Identity Store ids look like `d-1234567890`; user, group and membership ids like `<10 hex>-<uuid>`. */
const storeId = () => `d-${randomHex(5)}`
const principalId = () => `${randomHex(5)}-${uuid()}`

export class FakeIdentityStore {
  readonly stores = new Map<string, StoreState>()

  addStore(id = storeId()): string {
    this.stores.set(id, { users: new Map(), groups: new Map(), memberships: new Map() })
    return id
  }

  addUser(store: string, user: { userName: string; email?: string; displayName?: string }): FakeSsoUser {
    const u: FakeSsoUser = {
      UserId: principalId(),
      UserName: user.userName,
      DisplayName: user.displayName ?? user.userName,
      Emails: user.email ? [{ Value: user.email, Type: 'work', Primary: true }] : [],
      UserStatus: 'ENABLED',
    }
    this.state(store).users.set(u.UserId, u)
    return u
  }

  addGroup(store: string, displayName: string): string {
    const id = principalId()
    this.state(store).groups.set(id, { GroupId: id, DisplayName: displayName })
    return id
  }

  isMember(store: string, group: string, user: string): boolean {
    return [...this.state(store).memberships.values()].some((m) => m.GroupId === group && m.UserId === user)
  }

  hasUser(store: string, user: string): boolean {
    return this.stores.get(store)?.users.has(user) ?? false
  }

  private state(id: unknown): StoreState {
    const s = typeof id === 'string' ? this.stores.get(id) : undefined
    if (!s) throw new AwsFakeError('ResourceNotFoundException', `Identity store ${String(id)} does not exist`, 400, { ResourceType: 'IDENTITY_STORE', ResourceId: String(id) })
    return s
  }

  handle(op: string, input: Record<string, unknown>): Record<string, unknown> {
    const s = this.state(input.IdentityStoreId)
    const requireUser = (id: unknown) => {
      if (typeof id !== 'string' || !s.users.has(id)) throw new AwsFakeError('ResourceNotFoundException', `User ${String(id)} not found`, 400, { ResourceType: 'USER', ResourceId: String(id) })
      return id
    }
    const requireGroup = (id: unknown) => {
      if (typeof id !== 'string' || !s.groups.has(id)) throw new AwsFakeError('ResourceNotFoundException', `Group ${String(id)} not found`, 400, { ResourceType: 'GROUP', ResourceId: String(id) })
      return id
    }
    const memberOf = (m: unknown) => (m && typeof m === 'object' ? (m as { UserId?: unknown }).UserId : undefined)
    switch (op) {
      case 'GetUserId': {
        const alt = input.AlternateIdentifier as { UniqueAttribute?: { AttributePath?: string; AttributeValue?: unknown } } | undefined
        const attr = alt?.UniqueAttribute
        if (!attr) throw new AwsFakeError('ValidationException', 'AlternateIdentifier must have UniqueAttribute or ExternalId')
        const value = (typeof attr.AttributeValue === 'string' ? attr.AttributeValue : JSON.stringify(attr.AttributeValue ?? '')).toLowerCase()
        let found: FakeSsoUser | undefined
        if (attr.AttributePath === 'userName') found = [...s.users.values()].find((u) => u.UserName.toLowerCase() === value)
        else if (attr.AttributePath === 'emails.value') found = [...s.users.values()].find((u) => u.Emails.some((e) => e.Value.toLowerCase() === value))
        else throw new AwsFakeError('ValidationException', `Invalid AttributePath ${attr.AttributePath ?? ''}: the only valid paths are userName and emails.value`)
        if (!found) throw new AwsFakeError('ResourceNotFoundException', 'USER not found.', 400, { ResourceType: 'USER' })
        return { IdentityStoreId: input.IdentityStoreId, UserId: found.UserId }
      }
      case 'DescribeUser': {
        const u = s.users.get(requireUser(input.UserId))!
        return { IdentityStoreId: input.IdentityStoreId, ...u }
      }
      case 'CreateGroupMembership': {
        const group = requireGroup(input.GroupId)
        const user = requireUser(memberOf(input.MemberId))
        if ([...s.memberships.values()].some((m) => m.GroupId === group && m.UserId === user)) {
          throw new AwsFakeError('ConflictException', 'Member already exists in the group', 409, { Reason: 'UNIQUENESS_CONSTRAINT_VIOLATION' })
        }
        const m = { MembershipId: principalId(), GroupId: group, UserId: user }
        s.memberships.set(m.MembershipId, m)
        return { MembershipId: m.MembershipId, IdentityStoreId: input.IdentityStoreId }
      }
      case 'GetGroupMembershipId': {
        const group = requireGroup(input.GroupId)
        const user = memberOf(input.MemberId)
        const m = [...s.memberships.values()].find((x) => x.GroupId === group && x.UserId === user)
        if (!m) throw new AwsFakeError('ResourceNotFoundException', 'GROUP_MEMBERSHIP not found.', 400, { ResourceType: 'GROUP_MEMBERSHIP' })
        return { MembershipId: m.MembershipId, IdentityStoreId: input.IdentityStoreId }
      }
      case 'DeleteGroupMembership': {
        const id = input.MembershipId
        if (typeof id !== 'string' || !s.memberships.delete(id)) throw new AwsFakeError('ResourceNotFoundException', `Membership ${String(id)} not found`, 400, { ResourceType: 'GROUP_MEMBERSHIP', ResourceId: String(id) })
        return {}
      }
      case 'ListGroupMemberships': {
        const group = requireGroup(input.GroupId)
        const all = [...s.memberships.values()].filter((m) => m.GroupId === group)
        const page = paginate(all, input.NextToken as string | undefined, Number(input.MaxResults ?? 100))
        return {
          GroupMemberships: page.items.map((m) => ({ IdentityStoreId: input.IdentityStoreId, MembershipId: m.MembershipId, GroupId: m.GroupId, MemberId: { UserId: m.UserId } })),
          NextToken: page.next,
        }
      }
      case 'IsMemberInGroups': {
        const user = memberOf(input.MemberId)
        const groups = Array.isArray(input.GroupIds) ? (input.GroupIds as string[]) : []
        return { Results: groups.map((g) => ({ GroupId: g, MemberId: { UserId: user }, MembershipExists: [...s.memberships.values()].some((m) => m.GroupId === g && m.UserId === user) })) }
      }
      default:
        throw new AwsFakeError('UnknownOperationException', `Unknown operation AWSIdentityStore.${op}`)
    }
  }

  reset(): void {
    this.stores.clear()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// IAM Identity Center: sso-admin

export interface FakeAssignment {
  readonly AccountId: string
  readonly PermissionSetArn: string
  readonly PrincipalType: 'USER' | 'GROUP'
  readonly PrincipalId: string
}

interface AssignmentRequest {
  readonly kind: 'creation' | 'deletion'
  readonly assignment: FakeAssignment
  readonly requestId: string
  readonly createdDate: Date
  pollsLeft: number
  status: 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED'
  readonly outcome: { status: 'SUCCEEDED' | 'FAILED'; reason?: string }
}

const INSTANCE_ARN_RE = /^arn:aws:sso:::instance\/(sso)?ins-[a-zA-Z0-9-.]{16}$/
const PERMISSION_SET_ARN_RE = /^arn:aws:sso:::permissionSet\/(sso)?ins-[a-zA-Z0-9-.]{16}\/ps-[a-zA-Z0-9-./]{16}$/

export class FakeSsoAdmin {
  readonly instances = new Map<string, { InstanceArn: string; IdentityStoreId: string; OwnerAccountId: string; Name: string; Status: string }>()
  readonly permissionSets = new Map<string, { Name: string; PermissionSetArn: string; SessionDuration: string }>()
  readonly assignments = new Map<string, FakeAssignment>()
  readonly requests = new Map<string, AssignmentRequest>()
  /** How many `Describe…Status` polls answer IN_PROGRESS before the outcome. Default 1; Infinity: stuck. */
  inProgressPolls = 1
  /** What deleting an assignment that is not there ends in (reference: unverified). Default SUCCEEDED. */
  deleteAbsent: { status: 'SUCCEEDED' } | { status: 'FAILED'; reason: string } = { status: 'SUCCEEDED' }
  private readonly failures: Array<{ kind: 'creation' | 'deletion'; reason: string }> = []

  constructor(
    private readonly identityStore: FakeIdentityStore,
    private readonly accountId: string,
  ) {}

  /** An instance with its own identity store. */
  addInstance(name = 'opensym'): { instanceArn: string; identityStoreId: string } {
    const instanceArn = `arn:aws:sso:::instance/ssoins-${randomHex(8)}`
    const identityStoreId = this.identityStore.addStore()
    this.instances.set(instanceArn, { InstanceArn: instanceArn, IdentityStoreId: identityStoreId, OwnerAccountId: this.accountId, Name: name, Status: 'ACTIVE' })
    return { instanceArn, identityStoreId }
  }

  addPermissionSet(instanceArn: string, name: string): string {
    const arn = `arn:aws:sso:::permissionSet/${instanceArn.split('/').at(-1)}/ps-${randomHex(8)}`
    this.permissionSets.set(arn, { Name: name, PermissionSetArn: arn, SessionDuration: 'PT1H' })
    return arn
  }

  /** The next assignment creation (or deletion) request ends FAILED with this reason. */
  failNext(kind: 'creation' | 'deletion', reason: string): void {
    this.failures.push({ kind, reason })
  }

  isAssigned(a: FakeAssignment): boolean {
    return this.assignments.has(keyOf(a))
  }

  private instance(arn: unknown) {
    if (typeof arn !== 'string' || !INSTANCE_ARN_RE.test(arn)) throw new AwsFakeError('ValidationException', `The value '${String(arn)}' at 'instanceArn' failed to satisfy constraint`)
    const i = this.instances.get(arn)
    if (!i) throw new AwsFakeError('ResourceNotFoundException', `Instance ${arn} does not exist`)
    return i
  }

  private assignmentOf(input: Record<string, unknown>): FakeAssignment {
    const { TargetId, TargetType, PermissionSetArn, PrincipalType, PrincipalId } = input
    if (typeof TargetId !== 'string' || !/^\d{12}$/.test(TargetId)) throw new AwsFakeError('ValidationException', `The value '${String(TargetId)}' at 'targetId' failed to satisfy constraint: Member must satisfy regular expression pattern: \\d{12}`)
    if (TargetType !== 'AWS_ACCOUNT') throw new AwsFakeError('ValidationException', `The value '${String(TargetType)}' at 'targetType' failed to satisfy constraint`)
    if (typeof PermissionSetArn !== 'string' || !PERMISSION_SET_ARN_RE.test(PermissionSetArn)) throw new AwsFakeError('ValidationException', `The value '${String(PermissionSetArn)}' at 'permissionSetArn' failed to satisfy constraint`)
    if (!this.permissionSets.has(PermissionSetArn)) throw new AwsFakeError('ResourceNotFoundException', `PermissionSet ${PermissionSetArn} does not exist`, 400, { Reason: 'PERMISSION_SET_NOT_FOUND' })
    if (PrincipalType !== 'USER' && PrincipalType !== 'GROUP') throw new AwsFakeError('ValidationException', `The value '${String(PrincipalType)}' at 'principalType' failed to satisfy constraint`)
    if (typeof PrincipalId !== 'string' || !/^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$/.test(PrincipalId)) {
      throw new AwsFakeError('ValidationException', `The value '${String(PrincipalId)}' at 'principalId' failed to satisfy constraint`)
    }
    return { AccountId: TargetId, PermissionSetArn, PrincipalType, PrincipalId }
  }

  private statusOf(r: AssignmentRequest): Record<string, unknown> {
    return {
      Status: r.status,
      RequestId: r.requestId,
      ...(r.status === 'FAILED' ? { FailureReason: r.outcome.reason } : {}),
      TargetId: r.assignment.AccountId,
      TargetType: 'AWS_ACCOUNT',
      PermissionSetArn: r.assignment.PermissionSetArn,
      PrincipalType: r.assignment.PrincipalType,
      PrincipalId: r.assignment.PrincipalId,
      CreatedDate: epoch(r.createdDate),
    }
  }

  /** Advances a request by one poll; applies the change when it succeeds. */
  private advance(r: AssignmentRequest): void {
    if (r.status !== 'IN_PROGRESS') return
    if (r.pollsLeft > 0) {
      r.pollsLeft--
      return
    }
    r.status = r.outcome.status
    if (r.status === 'SUCCEEDED') {
      if (r.kind === 'creation') this.assignments.set(keyOf(r.assignment), r.assignment)
      else this.assignments.delete(keyOf(r.assignment))
    }
  }

  private start(kind: 'creation' | 'deletion', assignment: FakeAssignment, storeId: string): AssignmentRequest {
    const injected = this.failures.findIndex((f) => f.kind === kind)
    let outcome: AssignmentRequest['outcome'] = { status: 'SUCCEEDED' }
    if (injected >= 0) outcome = { status: 'FAILED', reason: this.failures.splice(injected, 1)[0]!.reason }
    else if (kind === 'creation' && assignment.PrincipalType === 'USER' && !this.identityStore.hasUser(storeId, assignment.PrincipalId)) {
      outcome = { status: 'FAILED', reason: `Received a 404 status error: Principal ${assignment.PrincipalId} does not exist in identity store ${storeId}` }
    } else if (kind === 'deletion' && !this.isAssigned(assignment)) outcome = this.deleteAbsent
    const r: AssignmentRequest = { kind, assignment, requestId: uuid(), createdDate: new Date(), pollsLeft: this.inProgressPolls, status: 'IN_PROGRESS', outcome }
    this.requests.set(r.requestId, r)
    return r
  }

  handle(op: string, input: Record<string, unknown>): Record<string, unknown> {
    switch (op) {
      case 'ListInstances': {
        const page = paginate([...this.instances.values()], input.NextToken as string | undefined, Number(input.MaxResults ?? 100))
        return { Instances: page.items, NextToken: page.next }
      }
      case 'ListPermissionSets': {
        const instance = this.instance(input.InstanceArn)
        const arns = [...this.permissionSets.keys()].filter((a) => a.includes(`/${instance.InstanceArn.split('/').at(-1)}/`))
        const page = paginate(arns, input.NextToken as string | undefined, Number(input.MaxResults ?? 100))
        return { PermissionSets: page.items, NextToken: page.next }
      }
      case 'DescribePermissionSet': {
        this.instance(input.InstanceArn)
        const ps = this.permissionSets.get(String(input.PermissionSetArn))
        if (!ps) throw new AwsFakeError('ResourceNotFoundException', `PermissionSet ${String(input.PermissionSetArn)} does not exist`)
        return { PermissionSet: ps }
      }
      case 'CreateAccountAssignment':
      case 'DeleteAccountAssignment': {
        const instance = this.instance(input.InstanceArn)
        const kind = op === 'CreateAccountAssignment' ? 'creation' : 'deletion'
        const r = this.start(kind, this.assignmentOf(input), instance.IdentityStoreId)
        return { [kind === 'creation' ? 'AccountAssignmentCreationStatus' : 'AccountAssignmentDeletionStatus']: this.statusOf(r) }
      }
      case 'DescribeAccountAssignmentCreationStatus':
      case 'DescribeAccountAssignmentDeletionStatus': {
        this.instance(input.InstanceArn)
        const kind = op === 'DescribeAccountAssignmentCreationStatus' ? 'creation' : 'deletion'
        const id = kind === 'creation' ? input.AccountAssignmentCreationRequestId : input.AccountAssignmentDeletionRequestId
        const r = typeof id === 'string' ? this.requests.get(id) : undefined
        if (!r || r.kind !== kind) throw new AwsFakeError('ResourceNotFoundException', `Request ${String(id)} does not exist`)
        this.advance(r)
        return { [kind === 'creation' ? 'AccountAssignmentCreationStatus' : 'AccountAssignmentDeletionStatus']: this.statusOf(r) }
      }
      case 'ListAccountAssignments': {
        this.instance(input.InstanceArn)
        if (typeof input.AccountId !== 'string' || typeof input.PermissionSetArn !== 'string') throw new AwsFakeError('ValidationException', 'AccountId and PermissionSetArn are required')
        const max = Number(input.MaxResults ?? 100)
        if (!Number.isInteger(max) || max < 1 || max > 100) throw new AwsFakeError('ValidationException', `The value '${String(input.MaxResults)}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100`)
        const all = [...this.assignments.values()].filter((a) => a.AccountId === input.AccountId && a.PermissionSetArn === input.PermissionSetArn)
        const page = paginate(all, input.NextToken as string | undefined, max)
        return { AccountAssignments: page.items, NextToken: page.next }
      }
      default:
        throw new AwsFakeError('UnknownOperationException', `Unknown operation SWBExternalService.${op}`)
    }
  }

  reset(): void {
    this.instances.clear()
    this.permissionSets.clear()
    this.assignments.clear()
    this.requests.clear()
    this.failures.length = 0
    this.inProgressPolls = 1
    this.deleteAbsent = { status: 'SUCCEEDED' }
  }
}

const keyOf = (a: FakeAssignment) => `${a.AccountId}|${a.PermissionSetArn}|${a.PrincipalType}|${a.PrincipalId}`

// ---------------------------------------------------------------------------------------------------------------
// Lambda

/**
 * What a fake function returns: a value sent as JSON; `{raw: string}` sent as is; `{functionError, errorType,
 * errorMessage}` a function error (`X-Amz-Function-Error`).
 */
export type LambdaResult = unknown

/** A function's code: gets the parsed payload (or the raw text when not JSON); a thrown error is an Unhandled function error. */
export type LambdaHandler = (payload: unknown, invocation: { readonly functionName: string; readonly qualifier: string | undefined; readonly type: string }) => LambdaResult

export interface LambdaInvocation {
  readonly functionName: string
  readonly qualifier: string | undefined
  readonly type: string
  readonly payload: unknown
}

export class FakeLambda {
  readonly functions = new Map<string, LambdaHandler>()
  readonly invocations: LambdaInvocation[] = []
  constructor(
    private readonly accountId: string,
    private readonly region: string,
  ) {}

  /** Registers a function; returns its ARN. */
  addFunction(name: string, handler: LambdaHandler): string {
    this.functions.set(name, handler)
    return this.arnOf(name)
  }

  arnOf(name: string): string {
    return `arn:aws:lambda:${this.region}:${this.accountId}:function:${name}`
  }

  invocationsOf(name: string): LambdaInvocation[] {
    return this.invocations.filter((i) => i.functionName === name)
  }

  async invoke(rawName: string, query: URLSearchParams, headers: Readonly<Record<string, string>>, body: Buffer): Promise<FakeResponse> {
    // A name, a partial or full ARN, optionally with a :qualifier.
    const arn = /^(?:arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?([A-Za-z0-9_-]+)(?::([\w$-]+))?$/.exec(rawName)
    const name = arn?.[1]
    const handler = name ? this.functions.get(name) : undefined
    if (!name || !handler) throw new AwsFakeError('ResourceNotFoundException', `Function not found: ${rawName.startsWith('arn:') ? rawName : this.arnOf(rawName)}`, 404)
    if (body.length > 6 * 1024 * 1024) throw new AwsFakeError('RequestTooLargeException', 'Request must be smaller than 6291456 bytes for the InvokeFunction operation', 413)
    const qualifier = arn?.[2] ?? query.get('Qualifier') ?? undefined
    const type = headers['x-amz-invocation-type'] ?? 'RequestResponse'
    const text = body.toString('utf8')
    let payload: unknown = text
    if (text) {
      try {
        payload = JSON.parse(text)
      } catch {
        throw new AwsFakeError('InvalidRequestContentException', 'Could not parse request body into json: Unexpected character', 400)
      }
    }
    this.invocations.push({ functionName: name, qualifier, type, payload })
    const info = { functionName: name, qualifier, type }
    if (type === 'DryRun') return { status: 204 }
    if (type === 'Event') {
      setImmediate(() => void Promise.resolve().then(() => handler(payload, info)).catch(() => undefined))
      return { status: 202 }
    }
    const headersOut: Record<string, string> = { 'x-amz-executed-version': '$LATEST', 'content-type': 'application/json' }
    let result: LambdaResult
    try {
      result = await handler(payload, info)
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e))
      return { status: 200, headers: { ...headersOut, 'x-amz-function-error': 'Unhandled' }, body: JSON.stringify({ errorMessage: err.message, errorType: err.name || 'Error', trace: [] }) }
    }
    if (result && typeof result === 'object' && 'functionError' in result) {
      const r = result as { functionError: string; errorType: string; errorMessage: string }
      return { status: 200, headers: { ...headersOut, 'x-amz-function-error': r.functionError }, body: JSON.stringify({ errorMessage: r.errorMessage, errorType: r.errorType, trace: [] }) }
    }
    if (result && typeof result === 'object' && 'raw' in result) return { status: 200, headers: headersOut, body: String((result as { raw: string }).raw) }
    return { status: 200, headers: headersOut, body: result === undefined ? 'null' : JSON.stringify(result) }
  }

  reset(): void {
    this.functions.clear()
    this.invocations.length = 0
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Secrets Manager

interface SecretVersion {
  readonly VersionId: string
  readonly SecretString?: string
  readonly SecretBinary?: Buffer
  readonly CreatedDate: Date
  stages: string[]
}

export class FakeSecretsManager {
  readonly secrets = new Map<string, { ARN: string; Name: string; versions: SecretVersion[]; deletedAt?: Date }>()
  constructor(
    private readonly accountId: string,
    private readonly region: string,
  ) {}

  /** Creates the secret or adds a version (the new one AWSCURRENT, the previous AWSPREVIOUS, as a rotation does). */
  putSecret(name: string, value: string | Buffer): string {
    let s = this.secrets.get(name)
    if (!s) {
      s = { ARN: `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:${name}-${randomHex(3)}`, Name: name, versions: [] }
      this.secrets.set(name, s)
    }
    for (const v of s.versions) v.stages = v.stages.includes('AWSCURRENT') ? ['AWSPREVIOUS'] : []
    s.versions.push({ VersionId: uuid(), ...(typeof value === 'string' ? { SecretString: value } : { SecretBinary: value }), CreatedDate: new Date(), stages: ['AWSCURRENT'] })
    return s.ARN
  }

  scheduleDeletion(name: string): void {
    const s = this.secrets.get(name)
    if (s) s.deletedAt = new Date()
  }

  handle(op: string, input: Record<string, unknown>): Record<string, unknown> {
    if (op !== 'GetSecretValue') throw new AwsFakeError('UnknownOperationException', `Unknown operation secretsmanager.${op}`)
    const id = input.SecretId
    if (typeof id !== 'string' || id === '') throw new AwsFakeError('InvalidParameterException', 'SecretId is required')
    const s = [...this.secrets.values()].find((x) => x.Name === id || x.ARN === id)
    if (!s) throw new AwsFakeError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.")
    if (s.deletedAt) throw new AwsFakeError('InvalidRequestException', "You can't perform this operation on the secret because it was marked for deletion.")
    const stage = typeof input.VersionStage === 'string' ? input.VersionStage : 'AWSCURRENT'
    const v = typeof input.VersionId === 'string' ? s.versions.find((x) => x.VersionId === input.VersionId) : s.versions.find((x) => x.stages.includes(stage))
    if (!v) throw new AwsFakeError('ResourceNotFoundException', "Secrets Manager can't find the specified secret value for staging label: " + stage)
    return {
      ARN: s.ARN,
      Name: s.Name,
      VersionId: v.VersionId,
      ...(v.SecretString !== undefined ? { SecretString: v.SecretString } : { SecretBinary: v.SecretBinary!.toString('base64') }),
      VersionStages: v.stages,
      CreatedDate: epoch(v.CreatedDate),
    }
  }

  reset(): void {
    this.secrets.clear()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The server

export interface FakeAwsOptions {
  /** Default `123456789012`. */
  readonly accountId?: string
  /** Used in ARNs. Default `us-east-1`. */
  readonly region?: string
  /** Long-term access keys accepted: id → secret. Default one pair, `credentials`. */
  readonly accessKeys?: Readonly<Record<string, string>>
  readonly now?: () => number
}

export interface FakeAws extends FakeServer {
  readonly accountId: string
  readonly region: string
  /** Long-term credentials the fake accepts (for the client that calls STS). */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
  readonly sts: FakeSts
  readonly iam: FakeIam
  readonly ssoAdmin: FakeSsoAdmin
  readonly identityStore: FakeIdentityStore
  readonly lambda: FakeLambda
  readonly secretsManager: FakeSecretsManager
  /** Answers the next `times` (default 1) calls of `operation` with an AWS error, in the service's protocol. */
  failWith(service: FakeAwsService, operation: string, error: AwsErrorSpec): void
}

/** The service and operation of an AWS request (JSON target, Lambda path, or Query `Action` + `Version`). */
function classify(req: FakeRequest): void {
  const target = req.headers['x-amz-target']
  if (target) {
    const [prefix, op] = target.split('.')
    req.service = (prefix && JSON_PREFIXES[prefix]) ?? 'unknown'
    req.operation = op ?? 'unknown'
    return
  }
  const lambda = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.pathname)
  if (lambda) {
    req.service = 'lambda'
    req.operation = 'Invoke'
    return
  }
  if (req.method === 'POST' && (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(req.body)
    const version = form.get('Version')
    req.service = version === '2010-05-08' ? 'iam' : version === '2011-06-15' ? 'sts' : 'unknown'
    req.operation = form.get('Action') ?? 'unknown'
  }
}

function errorResponse(service: FakeAwsService | 'unknown', operation: string, e: AwsFakeError, requestId: string, headers: Readonly<Record<string, string>> = {}): FakeResponse {
  const protocol = service === 'unknown' ? 'json' : PROTOCOL[service]
  if (protocol === 'query') {
    const body = `<ErrorResponse xmlns="${XMLNS[service] ?? ''}"><Error><Type>${e.type}</Type><Code>${esc(e.code)}</Code><Message>${esc(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`
    return { status: e.status, headers: { 'content-type': 'text/xml', ...headers }, body }
  }
  if (protocol === 'rest-json') {
    return { status: e.status, headers: { 'content-type': 'application/json', 'x-amzn-errortype': e.code, ...headers }, body: JSON.stringify({ Type: e.type === 'Sender' ? 'User' : 'Service', message: e.message, ...e.extra }) }
  }
  void operation
  return { status: e.status, headers: { 'content-type': 'application/x-amz-json-1.1', ...headers }, body: JSON.stringify({ __type: e.code, message: e.message, ...e.extra }) }
}

function queryResponse(service: 'iam' | 'sts', operation: string, result: Record<string, unknown> | undefined, requestId: string): FakeResponse {
  const inner = result === undefined ? '' : `<${operation}Result>${xml(result)}</${operation}Result>`
  return {
    status: 200,
    headers: { 'content-type': 'text/xml' },
    body: `<${operation}Response xmlns="${XMLNS[service]}">${inner}<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${operation}Response>`,
  }
}

/** Starts the fake on 127.0.0.1. */
export async function startFakeAws(options: FakeAwsOptions = {}): Promise<FakeAws> {
  const accountId = options.accountId ?? '123456789012'
  const region = options.region ?? 'us-east-1'
  const now = options.now ?? Date.now
  const credentials = { accessKeyId: 'AKIAOPENSYMFAKE00001', secretAccessKey: 'fake-secret-access-key' }
  const accessKeys: Readonly<Record<string, string>> = options.accessKeys ?? { [credentials.accessKeyId]: credentials.secretAccessKey }
  const sts = new FakeSts(now)
  const iam = new FakeIam(accountId)
  const identityStore = new FakeIdentityStore()
  const ssoAdmin = new FakeSsoAdmin(identityStore, accountId)
  const lambda = new FakeLambda(accountId, region)
  const secretsManager = new FakeSecretsManager(accountId, region)
  const requestIds = new WeakMap<FakeRequest, string>()
  const idOf = (req: FakeRequest) => {
    let id = requestIds.get(req)
    if (!id) requestIds.set(req, (id = uuid()))
    return id
  }

  /** Checks the SigV4 header and the credentials; sets `req.principal`. */
  function authenticate(req: FakeRequest, service: FakeAwsService): void {
    const auth = req.headers.authorization
    const missing = PROTOCOL[service] === 'query' ? 'MissingAuthenticationToken' : 'MissingAuthenticationTokenException'
    if (!auth) throw new AwsFakeError(missing, 'Request is missing Authentication Token', 403)
    const m = AUTH_RE.exec(auth)
    if (!m) throw new AwsFakeError('IncompleteSignature', `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters: ${auth.slice(0, 40)}…`, 403)
    const [, keyId, , , signingName] = m
    if (signingName !== SIGNING_NAMES[service]) throw new AwsFakeError('InvalidSignatureException', `Credential should be scoped to correct service: '${SIGNING_NAMES[service]}'.`, 403)
    if (keyId! in accessKeys) {
      req.principal = keyId!
      return
    }
    const session = sts.sessions.get(keyId!)
    const invalid = PROTOCOL[service] === 'query' ? 'InvalidClientTokenId' : 'UnrecognizedClientException'
    if (!session) throw new AwsFakeError(invalid, 'The security token included in the request is invalid.', 403)
    if (req.headers['x-amz-security-token'] !== session.sessionToken) throw new AwsFakeError(invalid, 'The security token included in the request is invalid.', 403)
    if (session.expiration.getTime() <= now()) throw new AwsFakeError('ExpiredTokenException', 'The security token included in the request is expired', 403)
    req.principal = session.roleArn
  }

  async function handle(req: FakeRequest): Promise<FakeResponse> {
    const service = req.service as FakeAwsService | 'unknown'
    const requestId = idOf(req)
    if (service === 'unknown') {
      return errorResponse('unknown', req.operation, new AwsFakeError('UnknownOperationException', `no fake AWS operation for ${req.method} ${req.url}`), requestId)
    }
    try {
      authenticate(req, service)
      const input = (req.json && typeof req.json === 'object' ? req.json : {}) as Record<string, unknown>
      switch (service) {
        case 'sts': {
          if (req.operation !== 'AssumeRole') throw new AwsFakeError('InvalidAction', `Could not find operation ${req.operation} for version 2011-06-15`)
          return queryResponse('sts', 'AssumeRole', sts.assumeRole(new URLSearchParams(req.body), req.principal!.startsWith('arn:') ? req.principal! : `arn:aws:iam::${accountId}:user/opensym`), requestId)
        }
        case 'iam':
          return queryResponse('iam', req.operation, iam.handle(req.operation, new URLSearchParams(req.body)), requestId)
        case 'sso-admin':
          return jsonResponse(ssoAdmin.handle(req.operation, input))
        case 'identitystore':
          return jsonResponse(identityStore.handle(req.operation, input))
        case 'secretsmanager':
          return jsonResponse(secretsManager.handle(req.operation, input))
        case 'lambda': {
          const name = decodeURIComponent(/^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.pathname)![1]!)
          return await lambda.invoke(name, req.query, req.headers, req.rawBody)
        }
      }
    } catch (e) {
      if (e instanceof AwsFakeError) return errorResponse(service, req.operation, e, requestId)
      throw e
    }
  }

  const server = await startFakeServer({
    classify,
    handle,
    commonHeaders: (req) => ({ 'x-amzn-requestid': idOf(req) }),
    onReset: () => {
      sts.reset()
      iam.reset()
      ssoAdmin.reset()
      identityStore.reset()
      lambda.reset()
      secretsManager.reset()
    },
  })

  return Object.assign(server, {
    accountId,
    region,
    credentials,
    sts,
    iam,
    ssoAdmin,
    identityStore,
    lambda,
    secretsManager,
    failWith(service: FakeAwsService, operation: string, error: AwsErrorSpec) {
      const e = new AwsFakeError(error.code, error.message ?? `${error.code} (injected)`, error.status ?? 400, error.extra ?? {})
      server.fail({ match: { service, operation }, times: error.times ?? 1, respond: errorResponse(service, operation, e, uuid(), error.headers) })
    },
  })
}

const jsonResponse = (body: Record<string, unknown>): FakeResponse => ({
  status: 200,
  headers: { 'content-type': 'application/x-amz-json-1.1' },
  body: JSON.stringify(body),
})
