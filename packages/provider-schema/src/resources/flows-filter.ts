import { attr, idAttribute, resource } from '../dsl.js'
import { INTEGRATION_KEY } from './environment.js'

export const flowsFilter = resource({
  typeName: 'sym_flows_filter',
  kind: 'flows_filter',
  path: 'flows-filter',
  title: 'flows filter',
  description:
    'The `sym_flows_filter` (one per organization) decides which flows each user sees in the Slack flow-selection modal, with a `getFlows(user, flows, vars)` reducer.',
  schemaVersion: 0,
  lookup: 'singleton',
  importExample: 'sym_flows_filter',
  attributes: {
    id: idAttribute,
    implementation: attr.string({
      mode: 'required',
      encoding: 'base64',
      description: 'Source code defining the `getFlows` reducer. Sent to the API base64-encoded.',
    }),
    vars: attr.map({ mode: 'optional', default: {}, description: 'String values passed to the reducer.' }),
    integrations: attr.map({
      mode: 'optional',
      default: {},
      references: 'integration',
      keyPattern: INTEGRATION_KEY,
      description: 'Integrations available to the reducer, keyed `<name>_id` like environment integrations.',
    }),
  },
})
