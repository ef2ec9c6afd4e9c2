import { project } from '../../vitest.shared.js'

// isolated-vm on Node 20 needs the node snapshot off in every process that loads it.
const base = project('sandbox')
export default { ...base, test: { ...base.test, execArgv: ['--no-node-snapshot'] } }
