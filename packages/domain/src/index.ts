export * from './durations.js'
export * from './tokens.js'
export * from './access.js'
