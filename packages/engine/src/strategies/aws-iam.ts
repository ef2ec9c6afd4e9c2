/**
 * The `aws_iam` strategy: membership of an IAM group (`aws_iam_group` target, `settings.iam_group` = the group
 * name) in the account of a `permission_context` integration (its role is assumed with STS; `external_id` = the
 * account id).
 *
 * - identity: the IAM user's ARN. Discovery: the IAM user whose name is the user's email (`GetUser`); IAM users
 *   have no searchable email, so other naming schemes need a stored identity (admin `identities set`) or a
 *   `getIdentity` reducer. A stored identity may also be a plain user name.
 * - escalate: `AddUserToGroup` (success also when already a member).
 * - deescalate: `RemoveUserFromGroup` (success when not a member; `NoSuchEntity` — the user or group is gone — too).
 * - isGranted: `ListGroupsForUser` (following `Marker`).
 */
import { AddUserToGroupCommand, GetUserCommand, ListGroupsForUserCommand, RemoveUserFromGroupCommand } from '@aws-sdk/client-iam'
import { Aws } from '../aws.js'
import { StrategyError, type Strategy, type StrategyCall, type StrategyOutput } from '../strategy.js'
import { clientsFor, send, sendOr } from './aws-common.js'
import { requireTargetType, targetSetting } from './common.js'

export interface AwsIamStrategyOptions {
  /** Shared AWS clients (endpoints, credentials). Default: a new `Aws()`. */
  readonly aws?: Aws
}

const MAX_PAGES = 1000
/** IAM user names: letters, digits and `+=,.@_-`, 1–64 characters. */
const USER_NAME_RE = /^[\w+=,.@-]{1,64}$/

/** The IAM user name of an identity: the last path segment of a user ARN, or the identity itself. */
export function iamUserName(identity: string): string {
  const m = /^arn:aws[a-z-]*:iam::\d{12}:user\/(?:.*\/)?([^/]+)$/.exec(identity)
  return m ? m[1]! : identity
}

export function createAwsIamStrategy(options: AwsIamStrategyOptions = {}): Strategy {
  const aws = options.aws ?? new Aws()

  function names(call: StrategyCall) {
    requireTargetType(call, ['aws_iam_group'])
    const group = targetSetting(call, 'iam_group')
    const user = iamUserName(call.identity)
    if (!USER_NAME_RE.test(user)) throw new StrategyError(`aws_iam: "${call.identity}" is not an IAM user ARN or user name`)
    return { group, user }
  }

  async function change(call: StrategyCall, step: 'escalate' | 'deescalate'): Promise<StrategyOutput> {
    const { group, user } = names(call)
    const iam = clientsFor(aws, call).iam()
    const body = { iam_group: group, user_name: user }
    if (step === 'escalate') {
      await send(`iam AddUserToGroup ${group}`, () => iam.send(new AddUserToGroupCommand({ GroupName: group, UserName: user }), { abortSignal: call.signal }))
      return { body, errors: [] }
    }
    const gone = await sendOr(
      `iam RemoveUserFromGroup ${group}`,
      () => iam.send(new RemoveUserFromGroupCommand({ GroupName: group, UserName: user }), { abortSignal: call.signal }).then(() => false),
      { NoSuchEntityException: () => true },
    )
    return gone ? { body, errors: [], warnings: [`iam RemoveUserFromGroup ${group}: NoSuchEntity (the user or group is gone; nothing to remove)`] } : { body, errors: [] }
  }

  return {
    type: 'aws_iam',
    identityService: 'aws_iam',
    async identity(call) {
      const email = call.subject.email
      if (!email || !USER_NAME_RE.test(email)) return undefined
      const iam = clientsFor(aws, call).iam()
      const out = await sendOr('iam GetUser', () => iam.send(new GetUserCommand({ UserName: email }), { abortSignal: call.signal }), { NoSuchEntityException: () => undefined })
      return out?.User?.Arn ?? undefined
    },
    escalate: (call) => change(call, 'escalate'),
    deescalate: (call) => change(call, 'deescalate'),
    async isGranted(call) {
      const { group, user } = names(call)
      const iam = clientsFor(aws, call).iam()
      let marker: string | undefined
      for (let page = 0; page < MAX_PAGES; page++) {
        const out = await sendOr('iam ListGroupsForUser', () => iam.send(new ListGroupsForUserCommand({ UserName: user, Marker: marker }), { abortSignal: call.signal }), {
          NoSuchEntityException: () => undefined,
        })
        if (!out) return false
        if (out.Groups?.some((g) => g.GroupName === group)) return true
        if (!out.IsTruncated || !out.Marker) return false
        marker = out.Marker
      }
      return false
    },
  }
}
