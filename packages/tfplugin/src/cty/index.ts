/**
 * `@opensym/tfplugin/cty` — cty types and values as Terraform's plugin protocol v6 carries them.
 *
 * - Types ({@link CtyType}) come from schemas; their JSON form ({@link encodeTypeJson} / {@link decodeTypeJson}) is
 *   what schema attributes and dynamic values carry.
 * - Values ({@link CtyValue}) have three explicit states: null, unknown (optionally refined) and known. Numbers are
 *   exact ({@link CtyNumber}); maps and objects are `Map`s, so `__proto__` is just a key.
 * - {@link decodeMsgpack} / {@link encodeMsgpack} convert a `DynamicValue.msgpack` (everything Terraform sends, and
 *   every plan the provider returns); {@link decodeJson} / {@link encodeJson} convert JSON state.
 * - Paths ({@link CtyPath}) locate nested values for diagnostics and plan checks ({@link getAtPath},
 *   {@link setAtPath}, {@link walkValue}); every failure is a {@link CtyError} carrying one.
 */

/** Exact numbers: build attribute values with `CtyNumber.from(…)`, read them with `toBigInt()` / `toNumberExact()`. */
export { CtyNumber } from './number.js'

/** Paths and the module's error type. Map a path to a protocol `AttributePath` step by step. */
export { CtyError, attrStep, formatPath, indexStep, keyStep, pathEquals, type CtyPath, type CtyPathStep } from './path.js'

/**
 * Types: constructors (`CtyType.list(CtyType.string)`), equality, and the JSON representation used in schemas
 * (`encodeTypeJson` for `SchemaAttribute.type` bytes, `decodeTypeJson` to read one back).
 */
export {
  CtyType,
  decodeTypeJson,
  encodeTypeJson,
  typeEquals,
  typeFromJson,
  typeToJson,
  typeToString,
  type CtyPrimitiveType,
  type CtyTypeJson,
} from './types.js'

/**
 * Values: constructors (`CtyValue.object({ id: CtyValue.unknown({ notNull: true }) })`), state checks used by the
 * plan pipeline, raw equality for plan/apply consistency checks, and a conformance check for handler results.
 */
export {
  CtyValue,
  assertConforms,
  ctyEquals,
  ctyState,
  isKnown,
  isNull,
  isUnknown,
  isWhollyKnown,
  type CtyBool,
  type CtyDynamic,
  type CtyKnown,
  type CtyList,
  type CtyMap,
  type CtyNull,
  type CtyNumberBound,
  type CtyNumberValue,
  type CtyObject,
  type CtyRefinements,
  type CtySet,
  type CtyString,
  type CtyTuple,
  type CtyUnknown,
} from './values.js'

/** Navigation by path: read for diagnostics and plan checks, replace for plan modifiers, walk to find unknowns. */
export { getAtPath, setAtPath, walkValue, type CtyValueAtPath } from './walk.js'

/** `DynamicValue.msgpack`: decode config/prior/proposed values, encode planned and new state. */
export { REFINED_UNKNOWN_EXT, RefinementKey, UNKNOWN_EXT, decodeMsgpack, encodeMsgpack } from './msgpack.js'

/** JSON state: `UpgradeResourceState.raw_state.json` in, `DynamicValue.json` out when nothing is unknown. */
export { decodeJson, decodeJsonValue, encodeJson, type DecodeJsonOptions } from './json.js'
