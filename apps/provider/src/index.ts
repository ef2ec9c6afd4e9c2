export * from './connection.js'
export * from './convert.js'
export * from './resources.js'
