import { project } from '../../vitest.shared.js'

// The worker runs flow code in isolated-vm, which on Node 20 needs the node snapshot off.
const base = project('worker', { database: true })
export default { ...base, test: { ...base.test, execArgv: ['--no-node-snapshot'] } }
