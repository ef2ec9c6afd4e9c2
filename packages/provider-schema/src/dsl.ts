/**
 * The vocabulary every `sym_*` resource and data source is written in. A definition says, once, what Terraform
 * sees (names, types, required/optional/computed, defaults, descriptions) and what the API sees (JSON field
 * names, encodings, references to other entities). Everything else — API validation, the provider schema, the
 * docs — is derived from these objects by code in `derive/`.
 */

/** The entity kinds. One name per thing across database, API, provider and SDK. */
export const ENTITY_KINDS = [
  'integration',
  'target',
  'strategy',
  'flow',
  'environment',
  'runtime',
  'secret_source',
  'secret',
  'error_logger',
  'log_destination',
  'flows_filter',
] as const
export type EntityKind = (typeof ENTITY_KINDS)[number]

/** Terraform attribute types used by Sym's provider. Settings-style maps and ID lists hold strings only. */
export type AttributeType = 'string' | 'bool' | 'number' | 'map' | 'list'

/**
 * - `required`: set in configuration; required in API create/update bodies.
 * - `optional`: may be set; omitted from API bodies when unset.
 * - `computed`: set by the API only (e.g. `id`).
 * - `optional_computed`: may be set, otherwise filled from the API (data sources).
 */
export type AttributeMode = 'required' | 'optional' | 'computed' | 'optional_computed'

export interface AttributeDef {
  readonly type: AttributeType
  readonly mode: AttributeMode
  /** Markdown, shown in the docs and by `terraform providers schema -json`. */
  readonly description: string
  /** The JSON field name in API bodies when it differs from the Terraform name (`name` ↔ `slug`). */
  readonly json?: string
  /** Terraform default when unset (maps default to `{}` as in Sym's provider). */
  readonly default?: string | boolean | number | Readonly<Record<string, string>>
  /** The only values accepted (API 400 lists them; the provider validates at plan time). */
  readonly allowedValues?: readonly string[]
  /** For `list` attributes: the allowed values of each element. */
  readonly elementAllowedValues?: readonly string[]
  /** The value (or, for lists and maps, each element) is the id of another entity of this kind in the same org. */
  readonly references?: EntityKind
  /** Restricts which keys a `references` map may have (e.g. environment integrations end in `_id`). */
  readonly keyPattern?: { readonly regex: string; readonly hint: string }
  /** The API carries the value base64-encoded (implementations); Terraform state holds the decoded text. */
  readonly encoding?: 'base64'
  /** A slug: compared case-insensitively and stored lower-cased by the API. */
  readonly slug?: true
  /** A UUID in the API. */
  readonly format?: 'uuid'
  /** Sent to the API as this literal when unset (Sym's provider sends `"<null>"` for integration-less types). */
  readonly nullPlaceholder?: string
  /** The API treats `""` as unset (Terraform sends zero values for unset block attributes). */
  readonly emptyIsUnset?: true
  /** Omitted from the API body when not configured, so the platform default applies (`allowed_sources`). */
  readonly omitWhenNull?: true
  readonly sensitive?: true
  readonly maxLength?: number
  /**
   * How the provider plans the attribute, in order (terraform-plugin-framework's plan modifiers). Only the
   * provider reads these; they change nothing in the schema Terraform sees or in the API.
   * - `useStateForUnknown`: when the object already exists, plan the stored value instead of "known after apply"
   *   (for computed values that never change once set, such as `id`).
   */
  readonly planModifiers?: readonly PlanModifierName[]
  /**
   * Changing the value destroys the object and creates a new one (terraform-plugin-framework's `RequiresReplace()`,
   * SDKv2's `ForceNew`), for values the API cannot update in place. Runs after `planModifiers`. The description
   * Terraform shows says so.
   */
  readonly requiresReplace?: true
}

/** The plan modifiers an attribute may declare (see {@link AttributeDef.planModifiers}). */
export type PlanModifierName = 'useStateForUnknown'

export type NestingMode = 'list' | 'single'

export interface BlockDef {
  readonly nesting: NestingMode
  readonly description: string
  readonly minItems?: number
  readonly maxItems?: number
  /** The API field name when it differs from the block name (`prompt_field` ↔ `prompt_fields`). */
  readonly json?: string
  /** In the API, a block with at most one item is an object; otherwise an array of objects. */
  readonly apiShape: 'object' | 'array'
  readonly attributes: Readonly<Record<string, AttributeDef>>
  readonly blocks?: Readonly<Record<string, BlockDef>>
  /** Field names that must be unique across the items of an `array` block. */
  readonly uniqueBy?: string
}

/** Cross-attribute rules, evaluated by the API (400) and by the provider (plan-time diagnostics). */
export type RuleDef =
  | {
      readonly rule: 'required_unless_type'
      readonly attribute: string
      readonly types: readonly string[]
      readonly message: string
    }
  | {
      /** Per-type settings keys that must be present, unless the key is filled at request time by `field_bindings`. */
      readonly rule: 'settings_by_type'
      readonly attribute: string
      readonly bindingsAttribute?: string
      readonly settings: Readonly<Record<string, Readonly<Record<string, SettingDef>>>>
    }

export interface SettingDef {
  readonly required: boolean
  readonly description: string
  /**
   * What a set value must look like (settings values are strings):
   * - `http_url`: an absolute `http://` or `https://` URL with a host and without `user:password@`, whose host is not
   *   a link-local, metadata or reserved IP address (derive/addresses.ts);
   * - `uuid`: the id of another entity (e.g. a `sym_secret`);
   * - `integer`: a whole number within `range` (inclusive).
   */
  readonly format?: 'http_url' | 'uuid' | 'integer'
  /** For `format: 'integer'`: the smallest and largest values accepted. */
  readonly range?: readonly [number, number]
}

/** How an entity is found by `GET /entities/<path>?…` and imported. */
export type LookupStyle =
  /** `?slug=`; import by slug (never a UUID). */
  | 'slug'
  /** `?slug=&type=`; import as `TYPE:SLUG`. */
  | 'type_slug'
  /** One per org; no id in paths; import with any non-UUID string. */
  | 'singleton'

/** Where a slug comes from when the resource has no `name`. */
export type DerivedSlug = { readonly from: 'path' | 'destination' | 'settings'; readonly description: string }

export interface ResourceDef {
  /** The Terraform type name, e.g. `sym_flow`. */
  readonly typeName: string
  readonly kind: EntityKind
  /** The collection under `/api/v1/entities/`. */
  readonly path: string
  /** A short human name used in messages ("flow", "access strategy"). */
  readonly title: string
  readonly description: string
  readonly schemaVersion: number
  readonly lookup: LookupStyle
  /** Set when the resource has no `name`; the API derives a lookup slug from another field. */
  readonly derivedSlug?: DerivedSlug
  /** An example import id for the docs. */
  readonly importExample: string
  readonly attributes: Readonly<Record<string, AttributeDef>>
  readonly blocks?: Readonly<Record<string, BlockDef>>
  readonly rules?: readonly RuleDef[]
}

export interface DataSourceDef {
  readonly typeName: string
  /** The resource whose API collection is searched. */
  readonly resource: ResourceDef
  readonly description: string
  readonly attributes: Readonly<Record<string, AttributeDef>>
}

export interface ProviderConfigDef {
  readonly description: string
  readonly attributes: Readonly<Record<string, AttributeDef>>
}

// ---- builders: keep literal types so derived API types are precise --------------------------------------------

type AttrOpts = Omit<AttributeDef, 'type'>

export const attr = {
  string: <const O extends AttrOpts>(o: O) => ({ type: 'string', ...o }) as const satisfies AttributeDef,
  bool: <const O extends AttrOpts>(o: O) => ({ type: 'bool', ...o }) as const satisfies AttributeDef,
  number: <const O extends AttrOpts>(o: O) => ({ type: 'number', ...o }) as const satisfies AttributeDef,
  map: <const O extends AttrOpts>(o: O) => ({ type: 'map', ...o }) as const satisfies AttributeDef,
  list: <const O extends AttrOpts>(o: O) => ({ type: 'list', ...o }) as const satisfies AttributeDef,
}

export const block = <const B extends BlockDef>(b: B): B => b
export const resource = <const R extends ResourceDef>(r: R): R => r
export const dataSource = <const D extends DataSourceDef>(d: D): D => d

/** Every resource's computed `id`: assigned by the API on create, never changed after. */
export const idAttribute = attr.string({
  mode: 'computed',
  format: 'uuid',
  planModifiers: ['useStateForUnknown'],
  description: 'The UUID of this object, assigned by the API.',
})

/** A Terraform `name` that is the API `slug`. */
export const nameAttribute = (what: string, extra = '') =>
  attr.string({
    mode: 'required',
    json: 'slug',
    slug: true,
    maxLength: 255,
    description: `A unique, human-readable identifier for the ${what} (the API's \`slug\`). Compared case-insensitively and stored lower-cased.${extra}`,
  })

export const labelAttribute = (what: string) =>
  attr.string({
    mode: 'optional',
    emptyIsUnset: true,
    maxLength: 255,
    description: `A display name for the ${what}.`,
  })

export const settingsAttribute = (description: string) =>
  attr.map({ mode: 'optional', default: {}, description })

/** Slugs must be URL-safe: Sym's provider puts them in query strings without encoding. */
export const SLUG_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*$'

/** A resource title with its indefinite article, for messages: "an integration", "a flow". */
export const article = (noun: string): string => `${/^[aeiou]/i.test(noun) ? 'an' : 'a'} ${noun}`
