/**
 * The `aws_lambda` strategy: invokes the target's function (`aws_lambda_function` target, `settings.arn`)
 * synchronously (`RequestResponse`) with the event's §7.2 log entry, once for escalate and once for de-escalate
 * (`event.type` says which), through a `permission_context` integration (its role is assumed with STS).
 *
 * The function answers `{"body": {...}, "errors": [str]}` (reference §4.1): the output is stored on the event
 * (`getStepOutput()` in hooks); a non-empty `errors` fails the step with those messages; an empty or other-shaped
 * reply is success with a warning. A function error (`X-Amz-Function-Error`: an exception or a timeout in the
 * function) fails the step with the function's `errorType`/`errorMessage`. Throttling (429
 * `TooManyRequestsException`), 5xx and connection failures are retried. Identity: the user's email (the function
 * decides what it means); the target cannot be read back.
 */
import { Aws, awsSdk } from '../aws.js'
import { StrategyError, type Strategy, type StrategyCall, type StrategyOutput } from '../strategy.js'
import { clientsFor, send } from './aws-common.js'
import { requireTargetType, targetSetting } from './common.js'
import { successOutput } from './http.js'

export interface AwsLambdaStrategyOptions {
  /** Shared AWS clients (endpoints, credentials). Default: a new `Aws()`. */
  readonly aws?: Aws
}

const EXCERPT = 300

export function createAwsLambdaStrategy(options: AwsLambdaStrategyOptions = {}): Strategy {
  const aws = options.aws ?? new Aws()

  async function invoke(call: StrategyCall, step: 'escalate' | 'deescalate'): Promise<StrategyOutput> {
    requireTargetType(call, ['aws_lambda_function'])
    const arn = targetSetting(call, 'arn')
    const [lambda, { InvokeCommand }] = await Promise.all([clientsFor(aws, call).lambda(), awsSdk.lambda()])
    const out = await send(`lambda Invoke ${arn} (${step})`, () =>
      lambda.send(new InvokeCommand({ FunctionName: arn, InvocationType: 'RequestResponse', Payload: Buffer.from(JSON.stringify(call.payload)) }), { abortSignal: call.signal }),
    )
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : ''
    if (out.FunctionError) {
      let detail = text.slice(0, EXCERPT)
      try {
        const e = JSON.parse(text) as { errorType?: string; errorMessage?: string }
        detail = [e.errorType, e.errorMessage].filter(Boolean).join(': ') || detail
      } catch {
        // not JSON: keep the excerpt
      }
      const message = `lambda ${arn} ${step}: the function failed (${out.FunctionError})${detail ? `: ${detail}` : ''}`
      throw new StrategyError(message, [message])
    }
    return successOutput(step, text, false)
  }

  return {
    type: 'aws_lambda',
    async identity(call) {
      return call.subject.email || call.subject.username
    },
    escalate: (call) => invoke(call, 'escalate'),
    deescalate: (call) => invoke(call, 'deescalate'),
  }
}
