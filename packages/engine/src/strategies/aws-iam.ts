/**
 * The `aws_iam` strategy: membership of an IAM group (`aws_iam_group` target, `settings.iam_group` = the group
 * name) in the account of a `permission_context` integration (its role is assumed with STS; `external_id` = the
 * account id).
 *
 * - identity: the IAM user's ARN. IAM has no search by email, so discovery tries the two names an IAM user of
 *   this person can have (`GetUser`): the user's email (`ada@example.com`), then the local part of it (`ada`), the
 *   latter only when the IAM user's `email` tag (key case-insensitive) is that email, since a bare name may belong
 *   to someone else (another domain's `ada`). A local-part user without the tag is refused with a message saying
 *   how to fix it; any other scheme needs a stored identity (admin `identities set`, an ARN or a user name) or a
 *   `getIdentity` reducer.
 * - escalate: `AddUserToGroup` (success also when already a member).
 * - deescalate: `RemoveUserFromGroup` (success when not a member; `NoSuchEntity` — the user or group is gone — too).
 * - isGranted: `ListGroupsForUser` (following `Marker`).
 */
import type { IAMClient, User as IamUser } from '@aws-sdk/client-iam'
import { Aws, awsSdk } from '../aws.js'
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

/** The tag key (compared case-insensitively) that says whose IAM user a local-part-named user is. */
export const IAM_EMAIL_TAG = 'email'

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

  /** The context's IAM client and the SDK's commands (both loaded on first use). */
  async function iamFor(call: Pick<StrategyCall, 'strategy'>): Promise<{ iam: IAMClient; sdk: Awaited<ReturnType<typeof awsSdk.iam>> }> {
    const clients = clientsFor(aws, call)
    const [iam, sdk] = await Promise.all([clients.iam(), awsSdk.iam()])
    return { iam, sdk }
  }

  async function getUser(call: Pick<StrategyCall, 'strategy' | 'signal'>, name: string): Promise<IamUser | undefined> {
    const { iam, sdk } = await iamFor(call)
    const out = await sendOr(`iam GetUser ${name}`, () => iam.send(new sdk.GetUserCommand({ UserName: name }), { abortSignal: call.signal }), { NoSuchEntityException: () => undefined })
    return out?.User
  }

  async function change(call: StrategyCall, step: 'escalate' | 'deescalate'): Promise<StrategyOutput> {
    const { group, user } = names(call)
    const { iam, sdk } = await iamFor(call)
    const body = { iam_group: group, user_name: user }
    if (step === 'escalate') {
      await send(`iam AddUserToGroup ${group}`, () => iam.send(new sdk.AddUserToGroupCommand({ GroupName: group, UserName: user }), { abortSignal: call.signal }))
      return { body, errors: [] }
    }
    const gone = await sendOr(
      `iam RemoveUserFromGroup ${group}`,
      () => iam.send(new sdk.RemoveUserFromGroupCommand({ GroupName: group, UserName: user }), { abortSignal: call.signal }).then(() => false),
      { NoSuchEntityException: () => true },
    )
    return gone ? { body, errors: [], warnings: [`iam RemoveUserFromGroup ${group}: NoSuchEntity (the user or group is gone; nothing to remove)`] } : { body, errors: [] }
  }

  return {
    type: 'aws_iam',
    identityService: 'aws_iam',
    async identity(call) {
      const email = call.subject.email?.trim()
      if (!email) return undefined
      if (USER_NAME_RE.test(email)) {
        const named = await getUser(call, email)
        if (named?.Arn) return named.Arn
      }
      const local = email.split('@')[0] ?? ''
      if (!email.includes('@') || !USER_NAME_RE.test(local)) return undefined
      const candidate = await getUser(call, local)
      if (!candidate?.Arn) return undefined
      const tagged = candidate.Tags?.find((t) => t.Key?.toLowerCase() === IAM_EMAIL_TAG)?.Value?.trim()
      if (tagged?.toLowerCase() === email.toLowerCase()) return candidate.Arn
      // A differently tagged user is someone else: nobody found. An untagged one may or may not be this person.
      if (tagged) return undefined
      throw new StrategyError(
        `aws_iam: the IAM user "${local}" (${candidate.Arn}) may belong to ${email}, but it has no ${IAM_EMAIL_TAG} tag saying so; tag it ${IAM_EMAIL_TAG}=${email} (iam:TagUser), or set the user's aws_iam identity with the admin command (npm run -s admin -- identities set)`,
      )
    },
    escalate: (call) => change(call, 'escalate'),
    deescalate: (call) => change(call, 'deescalate'),
    async isGranted(call) {
      const { group, user } = names(call)
      const { iam, sdk } = await iamFor(call)
      let marker: string | undefined
      for (let page = 0; page < MAX_PAGES; page++) {
        const out = await sendOr('iam ListGroupsForUser', () => iam.send(new sdk.ListGroupsForUserCommand({ UserName: user, Marker: marker }), { abortSignal: call.signal }), {
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
