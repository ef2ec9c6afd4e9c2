export { createTestDatabase, uniqueSuffix, type TestDatabase } from './database.js'
export { createTestOrg, type TestOrg } from './org.js'
