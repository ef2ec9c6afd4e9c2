export * from './connection.js'
export * from './convert.js'
