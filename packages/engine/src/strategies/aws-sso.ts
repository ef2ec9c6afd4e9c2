/**
 * The `aws_sso` strategy: AWS IAM Identity Center, through a `permission_context` integration (its role is assumed
 * with STS; `external_id` = the instance ARN) and the strategy's `settings.instance_arn`.
 *
 * Targets:
 * - `aws_sso_permission_set` {`permission_set_arn`, `account_id`}: an account assignment of the permission set to the
 *   user (`CreateAccountAssignment` / `DeleteAccountAssignment`, then polling `DescribeAccountAssignment…Status`
 *   until `SUCCEEDED` or `FAILED`; still `IN_PROGRESS` after the polls → retried). Read back with
 *   `ListAccountAssignments`.
 * - `aws_sso_group` {`group_id`}: membership of an Identity Store group (`CreateGroupMembership`; a
 *   `ConflictException` for an existing membership is success; `GetGroupMembershipId` + `DeleteGroupMembership`,
 *   `ResourceNotFoundException` = not a member = success). Read back with `GetGroupMembershipId`.
 *
 * identity: the Identity Store `UserId`, found with `GetUserId` by `emails.value`, then `userName`. The identity
 * store is `settings.identity_store_id` of the strategy or integration, else the instance's (`ListInstances`).
 */
import type { IdentitystoreClient } from '@aws-sdk/client-identitystore'
import type { AccountAssignmentOperationStatus, SSOAdminClient } from '@aws-sdk/client-sso-admin'
import { Aws, awsSdk, type AwsClients } from '../aws.js'
import { RetryableStrategyError, StrategyError, type Strategy, type StrategyCall, type StrategyOutput } from '../strategy.js'
import { clientsFor, send, sendOr } from './aws-common.js'
import { delay, optionalSetting, requireTargetType, strategyName, targetSetting } from './common.js'

export interface AwsSsoStrategyOptions {
  /** Shared AWS clients (endpoints, credentials). Default: a new `Aws()`. */
  readonly aws?: Aws
  /** Between polls of an assignment's status. Default 1000 ms. */
  readonly pollIntervalMs?: number
  /** Status polls before the step is retried. Default 20. */
  readonly maxPolls?: number
}

type SsoAdminSdk = Awaited<ReturnType<typeof awsSdk.ssoAdmin>>
type IdentitystoreSdk = Awaited<ReturnType<typeof awsSdk.identitystore>>

/** The context's sso-admin client and the SDK's commands (both loaded on first use). */
async function ssoAdmin(clients: AwsClients): Promise<[SSOAdminClient, SsoAdminSdk]> {
  return Promise.all([clients.ssoAdmin(), awsSdk.ssoAdmin()])
}

/** The context's identitystore client and the SDK's commands (both loaded on first use). */
async function identitystore(clients: AwsClients): Promise<[IdentitystoreClient, IdentitystoreSdk]> {
  return Promise.all([clients.identitystore(), awsSdk.identitystore()])
}

const INSTANCE_ARN_RE = /^arn:aws[a-z-]*:sso:::instance\/(sso)?ins-[a-zA-Z0-9-.]{16}$/
const MAX_PAGES = 1000

export function createAwsSsoStrategy(options: AwsSsoStrategyOptions = {}): Strategy {
  const aws = options.aws ?? new Aws()
  const pollIntervalMs = options.pollIntervalMs ?? 1000
  const maxPolls = options.maxPolls ?? 20
  /** Identity store id per instance ARN (found once with ListInstances). */
  const identityStores = new Map<string, string>()

  function instanceArn(call: Pick<StrategyCall, 'strategy'>): string {
    const arn = optionalSetting(call.strategy.settings, 'instance_arn')
    if (!arn) throw new StrategyError(`${strategyName(call)} has no settings.instance_arn (the IAM Identity Center instance ARN)`)
    if (!INSTANCE_ARN_RE.test(arn)) throw new StrategyError(`${strategyName(call)}: settings.instance_arn "${arn}" is not an Identity Center instance ARN (arn:aws:sso:::instance/ssoins-…)`)
    return arn
  }

  async function identityStoreId(clients: AwsClients, call: Pick<StrategyCall, 'strategy' | 'signal'>, instance: string): Promise<string> {
    const configured = optionalSetting(call.strategy.settings, 'identity_store_id') ?? optionalSetting(call.strategy.integration?.settings ?? {}, 'identity_store_id')
    if (configured) return configured
    const known = identityStores.get(instance)
    if (known) return known
    const [admin, sso] = await ssoAdmin(clients)
    let token: string | undefined
    for (let page = 0; page < MAX_PAGES; page++) {
      const out = await send('sso-admin ListInstances', () => admin.send(new sso.ListInstancesCommand({ NextToken: token }), { abortSignal: call.signal }))
      const found = out.Instances?.find((i) => i.InstanceArn === instance)
      if (found?.IdentityStoreId) {
        identityStores.set(instance, found.IdentityStoreId)
        return found.IdentityStoreId
      }
      token = out.NextToken
      if (!token) break
    }
    throw new StrategyError(`${strategyName(call)}: the Identity Center instance ${instance} is not among the instances the permission context can see (ListInstances); check settings.instance_arn and the role`)
  }

  // -- account assignments ------------------------------------------------------------------------------------

  function assignment(call: StrategyCall, instance: string) {
    return {
      InstanceArn: instance,
      TargetId: targetSetting(call, 'account_id'),
      TargetType: 'AWS_ACCOUNT' as const,
      PermissionSetArn: targetSetting(call, 'permission_set_arn'),
      PrincipalType: 'USER' as const,
      PrincipalId: call.identity,
    }
  }

  /** Polls an assignment request until it is no longer IN_PROGRESS. */
  async function settle(clients: AwsClients, call: StrategyCall, instance: string, kind: 'creation' | 'deletion', first: AccountAssignmentOperationStatus | undefined): Promise<AccountAssignmentOperationStatus> {
    const [admin, sso] = await ssoAdmin(clients)
    let status = first
    const requestId = status?.RequestId
    if (!status || !requestId) throw new StrategyError(`sso-admin ${kind === 'creation' ? 'CreateAccountAssignment' : 'DeleteAccountAssignment'}: the reply has no request id`)
    for (let i = 0; status?.Status === 'IN_PROGRESS' && i < maxPolls; i++) {
      await delay(pollIntervalMs, call.signal)
      if (kind === 'creation') {
        const out = await send('sso-admin DescribeAccountAssignmentCreationStatus', () =>
          admin.send(new sso.DescribeAccountAssignmentCreationStatusCommand({ InstanceArn: instance, AccountAssignmentCreationRequestId: requestId }), { abortSignal: call.signal }),
        )
        status = out.AccountAssignmentCreationStatus
      } else {
        const out = await send('sso-admin DescribeAccountAssignmentDeletionStatus', () =>
          admin.send(new sso.DescribeAccountAssignmentDeletionStatusCommand({ InstanceArn: instance, AccountAssignmentDeletionRequestId: requestId }), { abortSignal: call.signal }),
        )
        status = out.AccountAssignmentDeletionStatus
      }
    }
    if (!status) throw new StrategyError(`sso-admin: the status of assignment ${kind} request ${requestId} is missing`)
    if (status.Status === 'IN_PROGRESS') {
      throw new RetryableStrategyError(`sso-admin: assignment ${kind} request ${requestId} is still IN_PROGRESS after ${maxPolls} polls`)
    }
    return status
  }

  async function isAssigned(clients: AwsClients, call: StrategyCall, instance: string): Promise<boolean> {
    const [admin, sso] = await ssoAdmin(clients)
    const a = assignment(call, instance)
    let token: string | undefined
    for (let page = 0; page < MAX_PAGES; page++) {
      const out = await send('sso-admin ListAccountAssignments', () =>
        admin.send(new sso.ListAccountAssignmentsCommand({ InstanceArn: instance, AccountId: a.TargetId, PermissionSetArn: a.PermissionSetArn, MaxResults: 100, NextToken: token }), { abortSignal: call.signal }),
      )
      if (out.AccountAssignments?.some((x) => x.PrincipalType === 'USER' && x.PrincipalId === call.identity)) return true
      token = out.NextToken
      if (!token) return false
    }
    return false
  }

  async function assign(clients: AwsClients, call: StrategyCall, instance: string): Promise<StrategyOutput> {
    const [admin, sso] = await ssoAdmin(clients)
    const a = assignment(call, instance)
    const out = await send('sso-admin CreateAccountAssignment', () => admin.send(new sso.CreateAccountAssignmentCommand(a), { abortSignal: call.signal }))
    const status = await settle(clients, call, instance, 'creation', out.AccountAssignmentCreationStatus)
    if (status.Status !== 'SUCCEEDED') {
      throw new StrategyError(`sso-admin: assigning permission set ${a.PermissionSetArn} in account ${a.TargetId} to user ${call.identity} ${status.Status}: ${status.FailureReason ?? 'no reason given'} (request ${status.RequestId})`)
    }
    return { body: { account_id: a.TargetId, permission_set_arn: a.PermissionSetArn, principal_id: call.identity, request_id: status.RequestId ?? null, status: status.Status }, errors: [] }
  }

  async function unassign(clients: AwsClients, call: StrategyCall, instance: string): Promise<StrategyOutput> {
    const [admin, sso] = await ssoAdmin(clients)
    const a = assignment(call, instance)
    const out = await send('sso-admin DeleteAccountAssignment', () => admin.send(new sso.DeleteAccountAssignmentCommand(a), { abortSignal: call.signal }))
    const status = await settle(clients, call, instance, 'deletion', out.AccountAssignmentDeletionStatus)
    const body = { account_id: a.TargetId, permission_set_arn: a.PermissionSetArn, principal_id: call.identity, request_id: status.RequestId ?? null, status: status.Status ?? null }
    if (status.Status === 'SUCCEEDED') return { body, errors: [] }
    // A deletion of an assignment that is not there may fail: then it is gone, which is what was asked.
    if (!(await isAssigned(clients, call, instance))) {
      return { body, errors: [], warnings: [`sso-admin: the deletion ${status.Status}: ${status.FailureReason ?? 'no reason given'}; the assignment is not there`] }
    }
    throw new StrategyError(`sso-admin: removing permission set ${a.PermissionSetArn} in account ${a.TargetId} from user ${call.identity} ${status.Status}: ${status.FailureReason ?? 'no reason given'} (request ${status.RequestId})`)
  }

  // -- group memberships --------------------------------------------------------------------------------------

  async function membershipId(clients: AwsClients, call: StrategyCall, store: string, group: string): Promise<string | undefined> {
    const [ids, idsdk] = await identitystore(clients)
    const out = await sendOr(
      'identitystore GetGroupMembershipId',
      () => ids.send(new idsdk.GetGroupMembershipIdCommand({ IdentityStoreId: store, GroupId: group, MemberId: { UserId: call.identity } }), { abortSignal: call.signal }),
      { ResourceNotFoundException: () => undefined },
    )
    return out?.MembershipId
  }

  async function join(clients: AwsClients, call: StrategyCall, store: string, group: string): Promise<StrategyOutput> {
    const [ids, idsdk] = await identitystore(clients)
    const created = await sendOr(
      'identitystore CreateGroupMembership',
      () => ids.send(new idsdk.CreateGroupMembershipCommand({ IdentityStoreId: store, GroupId: group, MemberId: { UserId: call.identity } }), { abortSignal: call.signal }),
      { ConflictException: (e) => ({ conflict: e }) },
    )
    if ('conflict' in created) {
      // Already a member (UNIQUENESS_CONSTRAINT_VIOLATION), or a concurrent change: look.
      const existing = await membershipId(clients, call, store, group)
      if (!existing) throw new RetryableStrategyError(`identitystore CreateGroupMembership: ConflictException (${(created.conflict as { Reason?: string }).Reason ?? 'no reason'}) and no membership yet`, 1000)
      return { body: { group_id: group, user_id: call.identity, membership_id: existing, already_member: true }, errors: [] }
    }
    return { body: { group_id: group, user_id: call.identity, membership_id: created.MembershipId ?? null }, errors: [] }
  }

  async function leave(clients: AwsClients, call: StrategyCall, store: string, group: string): Promise<StrategyOutput> {
    const id = await membershipId(clients, call, store, group)
    if (!id) return { body: { group_id: group, user_id: call.identity, was_member: false }, errors: [] }
    const [ids, idsdk] = await identitystore(clients)
    await sendOr('identitystore DeleteGroupMembership', () => ids.send(new idsdk.DeleteGroupMembershipCommand({ IdentityStoreId: store, MembershipId: id }), { abortSignal: call.signal }), {
      ResourceNotFoundException: () => undefined,
    })
    return { body: { group_id: group, user_id: call.identity, membership_id: id }, errors: [] }
  }

  async function change(call: StrategyCall, step: 'escalate' | 'deescalate'): Promise<StrategyOutput> {
    const type = requireTargetType(call, ['aws_sso_permission_set', 'aws_sso_group'])
    const instance = instanceArn(call)
    const clients = clientsFor(aws, call)
    if (type === 'aws_sso_permission_set') return step === 'escalate' ? assign(clients, call, instance) : unassign(clients, call, instance)
    const group = targetSetting(call, 'group_id')
    const store = await identityStoreId(clients, call, instance)
    return step === 'escalate' ? join(clients, call, store, group) : leave(clients, call, store, group)
  }

  return {
    type: 'aws_sso',
    identityService: 'aws_sso',
    async identity(call) {
      const email = call.subject.email
      if (!email) return undefined
      const instance = instanceArn(call)
      const clients = clientsFor(aws, call)
      const store = await identityStoreId(clients, call, instance)
      const [ids, idsdk] = await identitystore(clients)
      for (const path of ['emails.value', 'userName'] as const) {
        const out = await sendOr(
          `identitystore GetUserId (${path})`,
          () => ids.send(new idsdk.GetUserIdCommand({ IdentityStoreId: store, AlternateIdentifier: { UniqueAttribute: { AttributePath: path, AttributeValue: email } } }), { abortSignal: call.signal }),
          { ResourceNotFoundException: () => undefined },
        )
        if (out?.UserId) return out.UserId
      }
      return undefined
    },
    escalate: (call) => change(call, 'escalate'),
    deescalate: (call) => change(call, 'deescalate'),
    async isGranted(call) {
      const type = requireTargetType(call, ['aws_sso_permission_set', 'aws_sso_group'])
      const instance = instanceArn(call)
      const clients = clientsFor(aws, call)
      if (type === 'aws_sso_permission_set') return isAssigned(clients, call, instance)
      const store = await identityStoreId(clients, call, instance)
      return (await membershipId(clients, call, store, targetSetting(call, 'group_id'))) !== undefined
    },
  }
}
