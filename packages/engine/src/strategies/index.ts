/** The built-in strategy implementations, by type (see ./README.md). The sandbox issue adds `custom`. */
import { Aws, type AwsOptions } from '../aws.js'
import type { Strategy, StrategyRegistry } from '../strategy.js'
import { createAwsIamStrategy } from './aws-iam.js'
import { createAwsLambdaStrategy } from './aws-lambda.js'
import { createAwsSsoStrategy, type AwsSsoStrategyOptions } from './aws-sso.js'
import { createGithubStrategy, type GithubStrategyOptions } from './github.js'
import { createHttpStrategy, type HttpStrategyOptions } from './http.js'
import { createOktaStrategy, type OktaStrategyOptions } from './okta.js'

export * from './http.js'
export * from './okta.js'
export * from './aws-sso.js'
export * from './aws-iam.js'
export * from './aws-lambda.js'
export * from './github.js'

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
  ]
  return new Map(all.map((s) => [s.type, s]))
}
