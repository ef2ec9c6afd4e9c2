/**
 * SDK integration calls from flow code, made by the worker's host handlers against local fakes: Okta group checks
 * and PagerDuty on-call in hooks, `sym_secret` values limited to the environment's, event counts, prefetch reducers
 * and prompt hooks for the Slack app.
 */
import { randomUUID } from 'node:crypto'
import { createDb, type Db } from '@opensym/db'
import { RecordingStrategy } from '@opensym/engine/testing'
import { startFakeAws, startFakeOkta, startFakePagerDuty, type FakeAws, type FakeOkta, type FakePagerDuty } from '@opensym/testing'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createHostHandlers } from '../src/host.js'
import { EngineQueues } from '../src/queues.js'
import { FlowRuntime } from '../src/runtime.js'
import { RunService } from '../src/service.js'
import { startEngineWorker, type EngineWorker } from '../src/worker.js'
import type { Aws } from '../src/aws.js'
import { createFlow, eventually, orgWithPrincipals, queuePrefix, redisClient, type FlowFixture, type OrgPrincipals } from './fixtures.js'
import { EXTERNAL_ID, fakeAwsClients, ROLE_ARN } from './strategy-fixtures.js'

let db: Db
let redis: Redis
let queues: EngineQueues
let service: RunService
let worker: EngineWorker
let flows: FlowRuntime
let o: OrgPrincipals
let okta: FakeOkta
let pd: FakePagerDuty
let fakeAws: FakeAws
let aws: Aws
let lambdaArn: string
let groupId: string
const oktaSecret = randomUUID()
const pdSecret = randomUUID()
const otherSecret = randomUUID()
const secretValues: Record<string, string> = {}
const strategy = new RecordingStrategy()

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 5 })
  redis = redisClient()
  const prefix = queuePrefix('host')
  queues = new EngineQueues({ connection: redis, prefix, attempts: 2, backoffMs: 50 })
  service = new RunService({ db, queues })
  o = await orgWithPrincipals(db, 'host')
  ;[okta, pd, fakeAws] = await Promise.all([startFakeOkta(), startFakePagerDuty(), startFakeAws()])
  fakeAws.sts.addRole({ arn: ROLE_ARN, externalId: EXTERNAL_ID })
  // A team's approval policy as a Lambda: on-call engineers are approved at once.
  lambdaArn = fakeAws.lambda.addFunction('sym-approval-policy', (p) => ({ approve: (p as { email?: string }).email === 'member@example.com' }))
  aws = fakeAwsClients(fakeAws)
  secretValues[oktaSecret] = okta.token
  secretValues[pdSecret] = pd.token
  secretValues[otherSecret] = 'not-for-flows'
  const group = okta.addGroup('approvers')
  groupId = group.id
  group.members.add(okta.addUser({ login: 'admin@example.com' }).id)
  okta.addUser({ login: 'member@example.com' })
  const onCall = pd.addUser({ name: 'Member', email: 'member@example.com' })
  pd.addOnCall({ userId: onCall.id, scheduleId: pd.addSchedule('Primary').id })
  pd.addIncident({ title: 'db down' })

  const host = createHostHandlers({
    db,
    secrets: () => async (id) => {
      const v = secretValues[id]
      if (v === undefined) throw new Error(`no secret ${id}`)
      return v
    },
    oktaBaseUrl: okta.baseUrl,
    pagerdutyBaseUrl: pd.baseUrl,
    aws,
  })
  flows = new FlowRuntime({ db, host, timeoutMs: 5000 })
  worker = await startEngineWorker({ db, connection: redis, prefix, strategies: new Map([['http', strategy]]), flows, attempts: 2, backoffMs: 50, reconcileIntervalMs: 0 })
})
afterAll(async () => {
  await worker?.close()
  await flows?.close()
  await queues?.close()
  aws?.destroy()
  await Promise.all([okta?.close(), pd?.close(), fakeAws?.close()])
  redis?.disconnect()
  await db?.$disconnect()
})

/** A flow whose environment has okta and pagerduty integrations (tokens as sym_secret ids). */
async function flowWith(implementation: string): Promise<FlowFixture> {
  const f = await createFlow(db, o.org.id)
  const flow = await db.flow.update({ where: { id: f.flowId }, data: { implementation, vars: { group: groupId } } })
  const existing = await db.environmentIntegration.count({ where: { environmentId: flow.environmentId } })
  if (existing === 0) {
    const oi = await db.integration.create({ data: { orgId: o.org.id, type: 'okta', slug: 'okta', externalId: 'example.okta.com', settings: { api_token_secret: oktaSecret } } })
    const pi = await db.integration.create({ data: { orgId: o.org.id, type: 'pagerduty', slug: 'pd', externalId: 'example', settings: { api_token_secret: pdSecret } } })
    const li = await db.integration.create({
      data: { orgId: o.org.id, type: 'permission_context', slug: 'lambda-ctx', externalId: '123456789012', settings: { cloud: 'aws', role_arn: ROLE_ARN, region: 'us-east-1', external_id: EXTERNAL_ID } },
    })
    await db.environmentIntegration.createMany({
      data: [
        { environmentId: flow.environmentId, key: 'okta_id', integrationId: oi.id },
        { environmentId: flow.environmentId, key: 'pagerduty_id', integrationId: pi.id },
        { environmentId: flow.environmentId, key: 'aws_lambda_id', integrationId: li.id },
      ],
    })
  }
  return f
}

async function settledRun(runId: string, check: (r: { status: string; events: Array<{ name: string; status: string; error: string | null; fields: unknown }> }) => boolean) {
  return eventually(async () => {
    const r = await db.run.findUniqueOrThrow({ where: { id: runId }, include: { events: { orderBy: { seq: 'asc' } } } })
    return r.events.every((e) => e.status !== 'pending') && check(r) && r
  }, 15_000, 'the run to settle')
}

const request = (f: FlowFixture, who = 'member@example.com') =>
  service.createRequest(o.bot, { flow_srn: f.flowSlug, flow_inputs: { reason: 'x', duration: 600, target_id: f.targets[0]!.id }, user_email: who })

describe('integration calls from hooks', () => {
  it('okta.isUserInGroup in onApprove: an approver outside the Okta group is ignored, one inside approves', async () => {
    const f = await flowWith(`
      import { ApprovalTemplate, okta, type Event } from '@opensym/sdk'
      export async function onApprove(event: Event) {
        if (!(await okta.isUserInGroup(event.user, { groupId: event.flow.vars.group! }))) {
          return ApprovalTemplate.ignore({ message: 'Only the approvers Okta group can approve.' })
        }
      }
      export const getPermissions = () => ({ webappView: 'member', approveDeny: 'member', allowSelfApproval: false })
    `)
    const { run_id } = await request(f, 'guest@example.com')
    await settledRun(run_id, (r) => r.events.length === 1)
    await service.decide(o.member, 'approve', { run_id })
    const ignored = await settledRun(run_id, (r) => r.events.length === 2)
    expect(ignored.events[1]).toMatchObject({ status: 'error', error: 'Only the approvers Okta group can approve.' })
    await service.decide(o.admin, 'approve', { run_id })
    await settledRun(run_id, (r) => r.status === 'escalated')
    expect(okta.calls('okta').every((c) => c.principal !== null)).toBe(true)
  })

  it('pagerduty.isOnCall in onRequest auto-approves whoever is on call', async () => {
    const f = await flowWith(`
      import { ApprovalTemplate, pagerduty, type Event } from '@opensym/sdk'
      export async function onRequest(event: Event) {
        if (await pagerduty.isOnCall(event.user, { scheduleName: 'Primary' })) return ApprovalTemplate.approve({ reason: 'on call' })
      }
    `)
    const onCall = await request(f, 'member@example.com')
    expect(await settledRun(onCall.run_id, (r) => r.status === 'escalated')).toMatchObject({ status: 'escalated' })
    const notOnCall = await request(f, 'admin@example.com')
    expect(await settledRun(notOnCall.run_id, (r) => r.events.length === 1)).toMatchObject({ status: 'requested' })
    expect(pd.operations('pagerduty')).toContain('GET /oncalls')
  })

  it('awsLambda.invoke in onRequest: the function (through the environment’s permission context) decides, and its errors fail the hook', async () => {
    const f = await flowWith(`
      import { ApprovalTemplate, awsLambda, type Event } from '@opensym/sdk'
      export async function onRequest(event: Event) {
        const answer = (await awsLambda.invoke('${lambdaArn}', { email: event.user.email })) as { approve?: boolean }
        if (answer.approve) return ApprovalTemplate.approve({ reason: 'policy lambda' })
      }
    `)
    const approved = await request(f, 'member@example.com')
    expect(await settledRun(approved.run_id, (r) => r.status === 'escalated')).toMatchObject({ status: 'escalated' })
    const waiting = await request(f, 'admin@example.com')
    expect(await settledRun(waiting.run_id, (r) => r.events.length === 1)).toMatchObject({ status: 'requested' })
    // Invoked with the assumed role's credentials, synchronously, with the hook's payload.
    expect(fakeAws.calls('sts', 'AssumeRole').length).toBeGreaterThan(0)
    expect(fakeAws.lambda.invocations.map((i) => i.payload)).toEqual(expect.arrayContaining([{ email: 'member@example.com' }, { email: 'admin@example.com' }]))

    fakeAws.failWith('lambda', 'Invoke', { code: 'ServiceException', status: 500 })
    const failed = await request(f, 'member@example.com')
    const r = await settledRun(failed.run_id, (x) => x.status === 'errored')
    expect(r.events[0]!.error).toMatch(/lambda Invoke .*sym-approval-policy.*ServiceException/)
  })

  it('a flow reads only its environment integrations’ secrets; a failing integration call fails the hook safely', async () => {
    const f = await flowWith(`
      import { Secret, type Event } from '@opensym/sdk'
      export async function onRequest(event: Event) {
        const own = await (event.flow.environment.integrations.okta!.settings.api_token_secret as Secret).retrieveValue()
        if (own !== '${okta.token}') throw new Error('wrong value')
        await new Secret('${otherSecret}').retrieveValue()
      }
    `)
    const { run_id } = await request(f)
    const r = await settledRun(run_id, (x) => x.status === 'errored')
    expect(r.events[0]!.error).toMatch(new RegExp(`sym_secret ${otherSecret} is not a secret of this flow's environment integrations`))
    expect(r.events[0]!.error).not.toContain('not-for-flows')
  })
})

describe('for the Slack app', () => {
  it('prefetch reducers answer a field’s options with the environment’s integrations', async () => {
    const f = await flowWith(`
      import { okta, type Event } from '@opensym/sdk'
      export const prefetch = {
        approver: async (event: Event) => (await okta.usersInGroup({ groupId: event.flow.vars.group! })).map((u) => ({ value: u.id, label: u.email ?? u.username })),
      }
    `)
    expect(await flows.prefetch(f.flowId, 'approver', { userId: o.member.userId })).toEqual([{ value: o.admin.userId, label: 'admin@example.com' }])
    await expect(flows.prefetch(f.flowId, 'nope', { userId: o.member.userId })).rejects.toThrow(/nope/)
  })

  it('onPrompt may keep the form from opening', async () => {
    const f = await flowWith(`
      import { ApprovalTemplate, type Event } from '@opensym/sdk'
      export function onPrompt(event: Event) {
        if (event.user.role === 'guest') return ApprovalTemplate.ignore({ message: 'Guests cannot request this.' })
      }
    `)
    expect(await flows.promptHook(f.flowId, 'onPrompt', { userId: o.guest.userId })).toEqual({ ok: true, defined: true, reply: { type: 'ignore', message: 'Guests cannot request this.' } })
    expect(await flows.promptHook(f.flowId, 'onPrompt', { userId: o.member.userId })).toMatchObject({ ok: true, reply: { type: 'proceed' } })
  })
})
