/** The built-in strategy implementations, by type (see ./README.md); `custom` runs in the sandbox it is given. */
import { Aws, type AwsOptions } from '../aws.js'
import type { Strategy, StrategyRegistry } from '../strategy.js'
import { createAwsIamStrategy } from './aws-iam.js'
import { createAwsLambdaStrategy } from './aws-lambda.js'
import { createAwsSsoStrategy, type AwsSsoStrategyOptions } from './aws-sso.js'
import { createCustomStrategy, type CustomStrategyOptions, type StrategySandbox } from './custom.js'
import { createGithubStrategy, type GithubStrategyOptions } from './github.js'
import { createHttpStrategy, type HttpStrategyOptions } from './http.js'
import { createOktaStrategy, type OktaStrategyOptions } from './okta.js'
import { outboundPolicyFromEnv } from '../outbound.js'

export * from './http.js'
export * from './okta.js'
export * from './aws-sso.js'
export * from './aws-iam.js'
export * from './aws-lambda.js'
export * from './github.js'
export * from './custom.js'

export interface BuiltinStrategyOptions {
  readonly http?: HttpStrategyOptions
  /** Default base URL: `OPENSYM_OKTA_BASE_URL`, else `https://<integration external_id>`. */
  readonly okta?: OktaStrategyOptions
  /** Default base URL: `OPENSYM_GITHUB_API_URL`, else `https://api.github.com`. */
  readonly github?: GithubStrategyOptions
  readonly awsSso?: Omit<AwsSsoStrategyOptions, 'aws'>
  /**
   * The AWS clients aws_sso, aws_iam and aws_lambda share (an `Aws`, or its options). The SDK itself also reads
   * `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_REGION`, `AWS_MAX_ATTEMPTS` and the credential chain.
   */
  readonly aws?: Aws | AwsOptions
  /**
   * The sandbox `custom` strategies run in (`createSandbox()` of `@opensym/sandbox`; the worker's). Without one,
   * `custom` is not installed and its runs fail saying so.
   */
  readonly sandbox?: StrategySandbox
  /**
   * `custom` options besides the sandbox (time limit, `fetch`, which URLs `strategy.fetch` may reach). The
   * network policy defaults to `OPENSYM_ALLOW_PRIVATE_NETWORKS` of {@link env}.
   */
  readonly custom?: Omit<CustomStrategyOptions, 'sandbox'>
  /** Where the `OPENSYM_*` defaults are read. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
}

/** A registry with every built-in strategy. */
export function builtinStrategies(options: BuiltinStrategyOptions = {}): StrategyRegistry {
  const env = options.env ?? process.env
  const aws = options.aws instanceof Aws ? options.aws : new Aws(options.aws)
  const oktaBaseUrl = options.okta?.baseUrl ?? (env.OPENSYM_OKTA_BASE_URL || undefined)
  const githubBaseUrl = options.github?.baseUrl ?? (env.OPENSYM_GITHUB_API_URL || undefined)
  const all: Strategy[] = [
    createHttpStrategy(options.http),
    createOktaStrategy({ ...options.okta, ...(oktaBaseUrl ? { baseUrl: oktaBaseUrl } : {}) }),
    createAwsSsoStrategy({ ...options.awsSso, aws }),
    createAwsIamStrategy({ aws }),
    createAwsLambdaStrategy({ aws }),
    createGithubStrategy({ ...options.github, ...(githubBaseUrl ? { baseUrl: githubBaseUrl } : {}) }),
    ...(options.sandbox ? [createCustomStrategy({ network: outboundPolicyFromEnv(env), ...options.custom, sandbox: options.sandbox })] : []),
  ]
  return new Map(all.map((s) => [s.type, s]))
}
