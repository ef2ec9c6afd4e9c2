import { project } from '../../vitest.shared.js'

// Flow implementations run in isolated-vm (runtime.ts), which on Node 20 needs the node snapshot off.
const base = project('engine', { database: true })
export default { ...base, test: { ...base.test, execArgv: ['--no-node-snapshot'] } }
