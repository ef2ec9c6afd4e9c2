export { createTestDatabase, uniqueSuffix, type TestDatabase } from './database.js'
export { createTestOrg, type TestOrg } from './org.js'
export { b64, entityBodies } from './entity-bodies.js'
