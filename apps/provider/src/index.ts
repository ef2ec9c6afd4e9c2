export * from './connection.js'
export * from './convert.js'
export * from './resources.js'
export * from './values.js'
