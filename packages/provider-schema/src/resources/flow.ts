import { attr, block, idAttribute, labelAttribute, nameAttribute, resource } from '../dsl.js'

export const PROMPT_FIELD_TYPES = [
  'string',
  'int',
  'bool',
  'duration',
  'slack_user',
  'slack_user_list',
  'str_list',
  'int_list',
] as const

export const FLOW_SOURCES = ['slack', 'api'] as const

export const promptField = block({
  nesting: 'list',
  apiShape: 'array',
  json: 'prompt_fields',
  uniqueBy: 'name',
  description: 'A field of the request form, in order. Values reach the flow implementation as `event.payload.fields[name]`.',
  attributes: {
    name: attr.string({
      mode: 'required',
      maxLength: 255,
      description: 'The field\'s key: `event.payload.fields[name]` and the key in the Events API `flow_inputs`.',
    }),
    type: attr.string({
      mode: 'required',
      allowedValues: PROMPT_FIELD_TYPES,
      description: 'The field type. `duration` values are seconds; `slack_user` is a Slack user ID.',
    }),
    required: attr.bool({ mode: 'optional', default: true, description: 'Whether the requester must fill the field.' }),
    label: attr.string({ mode: 'optional', emptyIsUnset: true, maxLength: 255, description: 'The label shown in Slack.' }),
    default: attr.string({
      mode: 'optional',
      emptyIsUnset: true,
      description: 'The value used when an optional field is left empty. Not available for Slack user and list types.',
    }),
    visible: attr.bool({
      mode: 'optional',
      default: true,
      description: 'Whether the field is shown in the request modal (an `on_change` handler can toggle it).',
    }),
    allowed_values: attr.list({
      mode: 'optional',
      description:
        'When set, the field becomes a dropdown of these values (for `duration`, values like `30m`, `1h`, `1d`). Ignored for a field named `target_id`, whose values are the strategy\'s targets.',
    }),
    prefetch: attr.bool({
      mode: 'optional',
      default: false,
      description: 'Whether the dropdown values come from a prefetch reducer of the flow implementation.',
    }),
    on_change: attr.string({
      mode: 'optional',
      encoding: 'base64',
      emptyIsUnset: true,
      description:
        'Source code of a handler run when the field changes in the Slack modal; it can change the form. Sent to the API base64-encoded.',
    }),
  },
})

export const flowParams = block({
  nesting: 'list',
  maxItems: 1,
  apiShape: 'object',
  description: 'How the flow behaves: its strategy, revocation, sources and request form.',
  attributes: {
    strategy_id: attr.string({
      mode: 'optional',
      format: 'uuid',
      references: 'strategy',
      emptyIsUnset: true,
      description: 'The ID of the `sym_strategy` that grants access. Omit it for an approval-only flow.',
    }),
    allow_revoke: attr.bool({
      mode: 'optional',
      default: true,
      description: 'Whether the requester and approvers see a **Revoke** button to end access early.',
    }),
    schedule_deescalation: attr.bool({
      mode: 'optional',
      default: true,
      description:
        'Whether access is removed automatically when the requested duration ends. When `false`, access ends only on revoke.',
    }),
    include_decision_message: attr.bool({
      mode: 'optional',
      default: false,
      description:
        'Whether approvers can add a free-text decision message, available to hooks as `event.payload.fields["decision_message"]`.',
    }),
    allowed_sources: attr.list({
      mode: 'optional',
      omitWhenNull: true,
      elementAllowedValues: FLOW_SOURCES,
      description:
        'Where the flow may be started from: `slack`, `api`. Unset means everywhere; an empty list means nowhere.',
    }),
    additional_header_text: attr.string({
      mode: 'optional',
      emptyIsUnset: true,
      description: 'Text appended to the header of the Slack request modal. Slack markdown is allowed.',
    }),
    allow_guest_interaction: attr.bool({
      mode: 'optional',
      default: false,
      description: 'Whether Slack guests may press Approve, Deny and Revoke.',
    }),
  },
  blocks: { prompt_field: promptField },
})

export const flow = resource({
  typeName: 'sym_flow',
  kind: 'flow',
  path: 'flows',
  title: 'flow',
  description:
    'A `sym_flow` is an access flow: a request form, routing to approvers, and (with a strategy) temporary access that is granted on approval and removed when its time is up. Its behaviour is customised by an implementation module of reducers and hooks written with the SDK.',
  schemaVersion: 1,
  lookup: 'slug',
  importExample: 'sso-access',
  attributes: {
    id: idAttribute,
    name: nameAttribute('flow', ' Users can start the flow in Slack with `/sym req <name>`.'),
    label: labelAttribute('flow (shown in Slack)'),
    implementation: attr.string({
      mode: 'required',
      encoding: 'base64',
      description:
        'The flow implementation\'s source code — use `file("impl.ts")`. It defines reducers such as `getPermissions` and hooks such as `onRequest`. Sent to the API base64-encoded.',
    }),
    environment_id: attr.string({
      mode: 'required',
      format: 'uuid',
      references: 'environment',
      description: 'The ID of the `sym_environment` whose integrations the flow uses.',
    }),
    vars: attr.map({
      mode: 'optional',
      default: {},
      description: 'String values passed to the implementation as `event.flow.vars`.',
    }),
  },
  blocks: { params: flowParams },
})
