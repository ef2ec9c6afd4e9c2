export { buildApp, type AppDeps } from './app.js'
export { loadConfig, type ApiConfig } from './config.js'
