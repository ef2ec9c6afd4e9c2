/** The aws_lambda strategy against the local AWS fake (STS + Lambda Invoke): the §7.2 payload and the {body, errors} contract. */
import { startFakeAws, type FakeAws } from '@opensym/testing'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Aws } from '../src/aws.js'
import { createAwsLambdaStrategy } from '../src/strategies/index.js'
import { RetryableStrategyError, StrategyError, type Strategy } from '../src/strategy.js'
import { EXTERNAL_ID, failure, fakeAwsClients, permissionContextIntegration, ROLE_ARN, strategyCall } from './strategy-fixtures.js'

let fake: FakeAws
let aws: Aws
let strategy: Strategy
let arn: string
const granted = new Set<string>()
const payload = { id: '00000000-0000-4000-8000-000000000030', type: 'event', event: { type: 'escalate' }, fields: { target: { name: 'db', settings: { arn: 'x' } } }, run: { actors: {} } }

beforeAll(async () => {
  fake = await startFakeAws()
})
beforeEach(() => {
  fake.reset()
  granted.clear()
  fake.sts.addRole({ arn: ROLE_ARN, externalId: EXTERNAL_ID })
  arn = fake.lambda.addFunction('sym-access', (p) => {
    const event = p as { event: { type: string }; fields: { target: { name: string } } }
    if (event.event.type === 'escalate') granted.add(event.fields.target.name)
    else granted.delete(event.fields.target.name)
    return { body: { done: event.event.type }, errors: [] }
  })
  aws = fakeAwsClients(fake)
  strategy = createAwsLambdaStrategy({ aws })
})
afterEach(() => aws.destroy())
afterAll(async () => fake?.close())

const call = (o: { arn?: string; step?: 'escalate' | 'deescalate' } = {}) =>
  strategyCall({
    type: 'aws_lambda',
    integration: permissionContextIntegration('123456789012'),
    target: { type: 'aws_lambda_function', settings: { arn: o.arn ?? arn } },
    identity: 'alice@example.com',
    payload: { ...payload, event: { type: o.step ?? 'escalate' } },
  })

describe('aws_lambda strategy', () => {
  it('invokes the function synchronously with the payload; its {body, errors} reply is the output', async () => {
    expect(await strategy.identity(call())).toBe('alice@example.com')
    expect(await strategy.escalate(call())).toEqual({ body: { done: 'escalate' }, errors: [] })
    expect(granted.has('db')).toBe(true)
    const [invoke] = fake.calls('lambda', 'Invoke')
    expect(invoke!.pathname).toBe(`/2015-03-31/functions/${encodeURIComponent(arn)}/invocations`)
    expect(invoke!.headers['x-amz-invocation-type']).toBe('RequestResponse')
    expect(invoke!.headers.authorization).toMatch(/\/us-east-1\/lambda\/aws4_request/)
    expect(invoke!.principal).toBe(ROLE_ARN)
    expect(fake.lambda.invocations[0]!.payload).toEqual({ ...payload, event: { type: 'escalate' } })
    expect(await strategy.deescalate(call({ step: 'deescalate' }))).toEqual({ body: { done: 'deescalate' }, errors: [] })
    expect(granted.has('db')).toBe(false)
    // Idempotent on the function's side: called again, it answers the same.
    expect(await strategy.deescalate(call({ step: 'deescalate' }))).toEqual({ body: { done: 'deescalate' }, errors: [] })
    expect('isGranted' in strategy).toBe(false)
  })

  it('errors from the function fail the step; an unformatted reply is success with a warning', async () => {
    const failing = fake.lambda.addFunction('refuses', () => ({ body: { why: 'x' }, errors: ['no such database role', { message: 'second' }] }))
    const refused = await failure(() => strategy.escalate(call({ arn: failing })), StrategyError)
    expect(refused.errors).toEqual(['no such database role', 'second'])
    expect(refused.output).toEqual({ body: { why: 'x' }, errors: ['no such database role', 'second'] })

    const crash = fake.lambda.addFunction('crashes', () => {
      throw new TypeError('cannot read properties of undefined')
    })
    const crashed = await failure(() => strategy.escalate(call({ arn: crash })), StrategyError)
    expect(crashed.message).toBe(`lambda ${crash} escalate: the function failed (Unhandled): TypeError: cannot read properties of undefined`)

    const odd = fake.lambda.addFunction('odd', () => ({ raw: 'ok' }))
    expect(await strategy.escalate(call({ arn: odd }))).toMatchObject({ body: {}, errors: [], warnings: [expect.stringMatching(/was not JSON/)] })
    const empty = fake.lambda.addFunction('empty', () => undefined)
    expect(await strategy.escalate(call({ arn: empty }))).toMatchObject({ errors: [], warnings: [expect.stringMatching(/not a JSON object|was not/)] })
  })

  it('throttling (429) and 5xx are retried; an unknown function is not', async () => {
    fake.failWith('lambda', 'Invoke', { code: 'TooManyRequestsException', status: 429, message: 'Rate Exceeded.', headers: { 'retry-after': '1' }, extra: { Reason: 'ConcurrentInvocationLimitExceeded' } })
    const throttled = await failure(() => strategy.escalate(call()), RetryableStrategyError)
    expect(throttled.message).toBe(`lambda Invoke ${arn} (escalate): TooManyRequestsException: Rate Exceeded. (HTTP 429)`)
    expect(throttled.retryAfterMs).toBe(1000)
    fake.failWith('lambda', 'Invoke', { code: 'ServiceException', status: 500 })
    expect(await failure(() => strategy.escalate(call()), RetryableStrategyError)).toBeInstanceOf(RetryableStrategyError)
    expect(granted.size).toBe(0)
    const missing = await failure(() => strategy.escalate(call({ arn: fake.lambda.arnOf('nope') })), StrategyError)
    expect(missing.message).toMatch(/ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope \(HTTP 404\)/)
  })
})
