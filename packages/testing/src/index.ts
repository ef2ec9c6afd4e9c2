export { createTestDatabase, uniqueSuffix, type TestDatabase } from './database.js'
export { createTestOrg, type TestOrg } from './org.js'
export { b64, entityBodies } from './entity-bodies.js'
export {
  expectedSignature,
  startHttpReceiver,
  type HttpReceiver,
  type HttpReceiverOptions,
  type ReceivedRequest,
  type Responder,
  type ScriptedResponse,
} from './http-receiver.js'
