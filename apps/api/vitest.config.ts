import { project } from '../../vitest.shared.js'

// The Slack routes run flow code (prefetch reducers, the flows filter) in isolated-vm, which on Node 20 needs the
// node snapshot off.
const base = project('api', { database: true })
export default { ...base, test: { ...base.test, execArgv: ['--no-node-snapshot'] } }
