/**
 * tfplugin6 and go-plugin protocol messages: generated static codecs (`./generated/`, from our `.proto` files,
 * checked against the terraform binary by `npm run verify-proto`) over the small wire runtime in `./wire.ts`.
 *
 * Import the protocol as a namespace: `import { tfplugin6 } from '@opensym/tfplugin/proto'` →
 * `tfplugin6.PlanResourceChange_Request`, `tfplugin6.Diagnostic_Severity.ERROR`.
 */
export * as tfplugin6 from './generated/tfplugin6.js'
export * as goplugin from './goplugin.js'
export * as wkt from './generated/google_protobuf.js'
export {
  decodeMessage,
  encodeMessage,
  ProtoDecodeError,
  ProtoReader,
  ProtoWriter,
  type MessageCodec,
  type MessageInit,
  type MethodDefinition,
  type RequestOf,
  type ResponseOf,
} from './wire.js'
