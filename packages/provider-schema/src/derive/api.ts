/**
 * API shapes derived from the resource definitions: the JSON Schemas (TypeBox) of entity bodies and responses,
 * and their static types. The API validates with these; the OpenAPI document is generated from them.
 */
import { Type, type TSchema, type TUnsafe } from 'typebox'
import type { AttributeDef, BlockDef, ResourceDef } from '../dsl.js'
import { SLUG_PATTERN } from '../dsl.js'
import type { EntityKind } from '../dsl.js'
import { resources } from '../catalog.js'

// ---- static types ----------------------------------------------------------------------------------------------

type Prettify<T> = { [K in keyof T]: T[K] } & {}

type AttrValue<A> = A extends { type: 'string' }
  ? string
  : A extends { type: 'bool' }
    ? boolean
    : A extends { type: 'number' }
      ? number
      : A extends { type: 'map' }
        ? Record<string, string>
        : A extends { type: 'list' }
          ? string[]
          : never

type JsonName<K, D> = D extends { json: infer J extends string } ? J : K & string

type BodyAttrs<As> = {
  [K in keyof As as As[K] extends { mode: 'required' } ? JsonName<K, As[K]> : never]: AttrValue<As[K]>
} & {
  [K in keyof As as As[K] extends { mode: 'optional' | 'optional_computed' } ? JsonName<K, As[K]> : never]?: AttrValue<
    As[K]
  >
}

type BlockFields<Bs> = {
  [K in keyof Bs as JsonName<K, Bs[K]>]?: Bs[K] extends { apiShape: 'object' } ? BlockObject<Bs[K]> : BlockObject<Bs[K]>[]
}

type BlockObject<B> = B extends { attributes: infer As; blocks: infer Bs }
  ? Prettify<BodyAttrs<As> & BlockFields<Bs>>
  : B extends { attributes: infer As }
    ? Prettify<BodyAttrs<As>>
    : never

type ResourceBlocks<R> = R extends { blocks: infer Bs } ? BlockFields<Bs> : unknown

/** The JSON body of a create (POST) or update (PATCH; the full object) of an entity. */
export type EntityBody<R extends ResourceDef> = Prettify<{ id?: string } & BodyAttrs<R['attributes']> & ResourceBlocks<R>>

/** The JSON the API returns for an entity. */
export type EntityView<R extends ResourceDef> = Prettify<
  Omit<EntityBody<R>, 'id'> & { id: string; created_at: string; updated_at: string } & (R extends {
      derivedSlug: object
    }
      ? { slug: string }
      : unknown)
>

export type BodyOf<K extends EntityKind> = EntityBody<(typeof resources)[K]>
export type ViewOf<K extends EntityKind> = EntityView<(typeof resources)[K]>

// ---- JSON Schemas ----------------------------------------------------------------------------------------------

const UUID = 'uuid'

/** The API field name of an attribute or block. */
export const jsonName = (name: string, d: AttributeDef | BlockDef): string => d.json ?? name

/**
 * Body schemas document defaults (the OpenAPI shows them); nothing fills them in: the API stores what it is sent,
 * so Terraform reads back exactly what it wrote, and readers apply `applyDefaults`. View schemas carry none, since
 * Fastify's serializer would otherwise add them to responses.
 */
function attributeSchema(a: AttributeDef, defaults: boolean): TSchema {
  const s = attributeTypeSchema(a, a.description)
  return defaults && a.default !== undefined ? ({ ...s, default: a.default }) : s
}

function attributeTypeSchema(a: AttributeDef, description: string): TSchema {
  switch (a.type) {
    case 'string': {
      if (a.allowedValues) return Type.Enum([...a.allowedValues], { description })
      const opts: Record<string, unknown> = { description }
      if (a.maxLength !== undefined) opts.maxLength = a.maxLength
      // UUIDs that may also carry a placeholder or "" are checked by the rules (derive/rules.ts) for a precise message.
      if (a.format === 'uuid' && !a.nullPlaceholder && !a.emptyIsUnset) opts.format = UUID
      if (a.slug) {
        opts.pattern = SLUG_PATTERN
        opts.minLength = 1
      } else if (a.mode === 'required' && !a.emptyIsUnset) opts.minLength = 1
      if (a.encoding === 'base64') opts.contentEncoding = 'base64'
      return Type.String(opts)
    }
    case 'bool':
      return Type.Boolean({ description })
    case 'number':
      return Type.Number({ description })
    case 'map': {
      const opts: Record<string, unknown> = { description }
      if (a.keyPattern) opts.propertyNames = { pattern: a.keyPattern.regex }
      const value = a.references ? Type.String({ format: UUID }) : Type.String()
      return Type.Record(Type.String(), value, opts)
    }
    case 'list': {
      const item = a.elementAllowedValues
        ? Type.Enum([...a.elementAllowedValues])
        : a.format === 'uuid'
          ? Type.String({ format: UUID })
          : Type.String()
      return Type.Array(item, { description })
    }
  }
}

function objectSchema(
  attributes: Readonly<Record<string, AttributeDef>>,
  blocks: Readonly<Record<string, BlockDef>> | undefined,
  opts: { description?: string; withId?: boolean; defaults: boolean },
): TSchema {
  const properties: Record<string, TSchema> = {}
  if (opts.withId) properties.id = Type.Optional(Type.String({ description: 'Ignored; the id in the path wins.' }))
  for (const [name, a] of Object.entries(attributes)) {
    if (a.mode === 'computed') continue
    const s = attributeSchema(a, opts.defaults)
    properties[jsonName(name, a)] = a.mode === 'required' ? s : Type.Optional(s)
  }
  for (const [name, b] of Object.entries(blocks ?? {})) {
    const item = objectSchema(b.attributes, b.blocks, { description: b.description, defaults: opts.defaults })
    const s = b.apiShape === 'object' ? item : Type.Array(item, { description: b.description })
    properties[jsonName(name, b)] = Type.Optional(s)
  }
  return Type.Object(properties, { additionalProperties: false, description: opts.description })
}

function viewSchema(r: ResourceDef): TSchema {
  const properties: Record<string, TSchema> = {
    id: Type.String({ format: UUID, description: 'The UUID of this object.' }),
  }
  if (r.derivedSlug) properties.slug = Type.String({ description: `Derived from ${r.derivedSlug.description}.` })
  for (const [name, a] of Object.entries(r.attributes)) {
    if (a.mode === 'computed') continue
    // Responses echo what was stored; placeholders such as "<null>" come back as absent fields.
    const s = attributeSchema({ ...a, nullPlaceholder: undefined, slug: undefined }, false)
    properties[jsonName(name, a)] = a.mode === 'required' ? s : Type.Optional(s)
  }
  for (const [name, b] of Object.entries(r.blocks ?? {})) {
    const item = objectSchema(b.attributes, b.blocks, { description: b.description, defaults: false })
    properties[jsonName(name, b)] = Type.Optional(b.apiShape === 'object' ? item : Type.Array(item))
  }
  properties.created_at = Type.String({ format: 'date-time' })
  properties.updated_at = Type.String({ format: 'date-time' })
  return Type.Object(properties, { additionalProperties: false })
}

/** PascalCase schema ids for the OpenAPI components: `access-strategies` → `AccessStrategy`. */
export const schemaName = (r: ResourceDef): string =>
  r.title
    .split(/[\s_-]+/)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('')

export interface EntityApiSchemas<R extends ResourceDef> {
  /** The `$id`s under which the API registers the two schemas (OpenAPI component names). */
  readonly ids: { readonly body: string; readonly view: string }
  /** POST and PATCH body. */
  readonly body: TUnsafe<EntityBody<R>>
  /** What GET/POST/PATCH return. */
  readonly view: TUnsafe<EntityView<R>>
}

/** The request and response schemas of one entity kind, with `$id`s for the OpenAPI components. */
export function entityApiSchemas<R extends ResourceDef>(r: R): EntityApiSchemas<R> {
  const name = schemaName(r)
  return {
    ids: { body: `${name}Body`, view: name },
    body: Type.Unsafe<EntityBody<R>>({
      ...objectSchema(r.attributes, r.blocks, { withId: true, defaults: true, description: `A ${r.title}, as sent to create or update it.` }),
      $id: `${name}Body`,
    }),
    view: Type.Unsafe<EntityView<R>>({ ...viewSchema(r), $id: name, description: r.description }),
  }
}

export type ApiSchemas = { [K in EntityKind]: EntityApiSchemas<(typeof resources)[K]> }

export const apiSchemas: ApiSchemas = Object.fromEntries(
  Object.entries(resources).map(([k, r]) => [k, entityApiSchemas(r)]),
) as ApiSchemas
