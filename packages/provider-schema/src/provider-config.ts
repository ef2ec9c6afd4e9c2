import { attr, type ProviderConfigDef } from './dsl.js'

export const DEFAULT_API_URL = 'http://127.0.0.1:8080/api/v1'

export const providerConfig = {
  description:
    'The `sym` provider manages Sym access flows and everything they use. Authenticate with a bot token in `SYM_JWT` (or the variable named by `jwt_env_var`), or log in with `symflow` so the token is read from its config file.',
  attributes: {
    org: attr.string({
      mode: 'required',
      description:
        'Your organization\'s ID or slug. When the token comes from the `symflow` config file, its `org` must match (set `SYM_TF_SKIP_VALIDATION` to skip the check).',
    }),
    jwt_env_var: attr.string({
      mode: 'optional',
      description: 'The name of the environment variable holding the API token. Defaults to `SYM_JWT`.',
    }),
    api_url: attr.string({
      mode: 'optional',
      description: `The base URL of the Sym API. Defaults to \`$SYM_API_URL\`, else \`${DEFAULT_API_URL}\`.`,
    }),
  },
} as const satisfies ProviderConfigDef
