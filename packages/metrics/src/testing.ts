/**
 * Reading the Prometheus text exposition format back, for tests and scripts that scrape `/metrics` and check
 * values (rather than comparing text).
 */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Exposition {
  readonly samples: readonly Sample[]
  /** `# TYPE` of each metric family. */
  readonly types: ReadonlyMap<string, string>
  /** Samples of `name` whose labels include every given one. */
  find(name: string, labels?: Readonly<Record<string, string>>): Sample[]
  /** The value of the one sample matching; throws when none or several match. */
  value(name: string, labels?: Readonly<Record<string, string>>): number
  /** The sum of the matching samples' values (0 when none). */
  sum(name: string, labels?: Readonly<Record<string, string>>): number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/y

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity
  if (text === '-Inf') return -Infinity
  if (text === 'NaN') return NaN
  const n = Number(text)
  if (Number.isNaN(n)) throw new Error(`not a sample value: ${text}`)
  return n
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {}
  LABEL.lastIndex = 0
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex
    const m = LABEL.exec(text)
    if (!m) {
      if (text.slice(at).trim() === '') break
      throw new Error(`bad labels in: ${line}`)
    }
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
  }
  return labels
}

/** Parses the text format (version 0.0.4); throws on a line that is neither a comment nor a sample. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line) continue
    if (line.startsWith('#')) {
      const type = /^#\s+TYPE\s+(\S+)\s+(\S+)/.exec(line)
      if (type) types.set(type[1]!, type[2]!)
      continue
    }
    const m = SAMPLE.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    samples.push({ name: m[1]!, labels: m[3] ? parseLabels(m[3], line) : {}, value: parseValue(m[4]!) })
  }
  const find = (name: string, labels: Readonly<Record<string, string>> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  return {
    samples,
    types,
    find,
    value(name, labels) {
      const found = find(name, labels)
      if (found.length !== 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels ?? {})}`)
      return found[0]!.value
    },
    sum: (name, labels) => find(name, labels).reduce((n, s) => n + s.value, 0),
  }
}
