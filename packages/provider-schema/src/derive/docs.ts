/**
 * Reference docs, one markdown page per resource and data source, in the layout of the Terraform registry
 * (tfplugindocs): front matter, description, example, schema grouped by Required/Optional/Read-Only, nested
 * blocks, import. Derived from the definitions; examples come from `examples/terraform/`.
 */
import { dataSources, resourceList } from '../catalog.js'
import type { AttributeDef, BlockDef, DataSourceDef, ResourceDef } from '../dsl.js'
import { providerConfig } from '../provider-config.js'
import { fullDescription } from './terraform.js'

export interface DocExamples {
  /** HCL for the "Example Usage" section. */
  readonly usage?: string
}

/** Short names as the registry uses them for file names: `sym_flow` → `flow`. */
export const docName = (typeName: string): string => typeName.replace(/^sym_/, '')

const typeLabel = (a: AttributeDef): string =>
  ({ string: 'String', bool: 'Boolean', number: 'Number', map: 'Map of String', list: 'List of String' })[a.type]

const anchor = (path: string) => `nestedblock--${path.replace(/\./g, '--')}`

function attributeLine(name: string, a: AttributeDef): string {
  const flags = a.sensitive ? ', Sensitive' : ''
  return `- \`${name}\` (${typeLabel(a)}${flags}) ${fullDescription(a)}`
}

function blockLine(name: string, b: BlockDef, path: string): string {
  const max = b.maxItems !== undefined ? `, Max: ${b.maxItems}` : ''
  return `- \`${name}\` (Block List${max}) ${b.description} (see [below for nested schema](#${anchor(path)}))`
}

function schemaSections(
  attributes: Readonly<Record<string, AttributeDef>>,
  blocks: Readonly<Record<string, BlockDef>> | undefined,
  heading: (title: string) => string,
  base = '',
): { text: string; nested: string[] } {
  const groups: Record<'Required' | 'Optional' | 'Read-Only', string[]> = { Required: [], Optional: [], 'Read-Only': [] }
  const nested: string[] = []
  for (const [name, a] of Object.entries(attributes)) {
    const g = a.mode === 'required' ? 'Required' : a.mode === 'computed' ? 'Read-Only' : 'Optional'
    groups[g].push(attributeLine(name, a))
  }
  for (const [name, b] of Object.entries(blocks ?? {})) {
    const path = base ? `${base}.${name}` : name
    ;(b.minItems ? groups.Required : groups.Optional).push(blockLine(name, b, path))
    const inner = schemaSections(b.attributes, b.blocks, (t) => `${t}:\n`, path)
    nested.push(
      `<a id="${anchor(path)}"></a>\n### Nested Schema for \`${path}\`\n\n${inner.text}`,
      ...inner.nested,
    )
  }
  const text = Object.entries(groups)
    .filter(([, lines]) => lines.length)
    .map(([title, lines]) => `${heading(title)}\n${lines.join('\n')}\n`)
    .join('\n')
  return { text, nested }
}

function frontMatter(title: string, kind: string, description: string): string {
  const first = description.split('\n')[0]
  return `---\npage_title: "${title} ${kind} - sym"\nsubcategory: ""\ndescription: |-\n  ${first}\n---\n`
}

function settingsByType(r: ResourceDef): string {
  const parts: string[] = []
  for (const rule of r.rules ?? []) {
    if (rule.rule !== 'settings_by_type') continue
    const rows = Object.entries(rule.settings).flatMap(([type, settings]) => {
      const entries = Object.entries(settings)
      if (!entries.length) return [`| \`${type}\` | – | | |`]
      return entries.map(([k, s]) => `| \`${type}\` | \`${k}\` | ${s.required ? 'yes' : 'no'} | ${s.description} |`)
    })
    const bound = rule.bindingsAttribute
      ? ` A required setting may be left out when it is listed in \`${rule.bindingsAttribute}\`.`
      : ''
    parts.push(
      `## \`${rule.attribute}\` by type\n\nThe API rejects a missing required setting with a 400 naming it.${bound}\n\n| type | setting | required | description |\n|---|---|---|---|\n${rows.join('\n')}\n`,
    )
  }
  return parts.join('\n')
}

function importSection(r: ResourceDef): string {
  const how = {
    slug: 'by its slug (not its UUID)',
    type_slug: 'as `TYPE:SLUG`',
    singleton: 'with any identifier that is not a UUID (there is one per organization)',
  }[r.lookup]
  const derived = r.derivedSlug ? ` The slug is derived from ${r.derivedSlug.description}.` : ''
  return `## Import\n\nImport is supported ${how}.${derived}\n\n\`\`\`shell\nterraform import ${r.typeName}.this ${r.importExample}\n\`\`\`\n`
}

const example = (ex: DocExamples) => (ex.usage ? `## Example Usage\n\n\`\`\`terraform\n${ex.usage.trimEnd()}\n\`\`\`\n\n` : '')

export function resourceDoc(r: ResourceDef, ex: DocExamples = {}): string {
  const schema = schemaSections(r.attributes, r.blocks, (t) => `### ${t}\n`)
  return [
    frontMatter(r.typeName, 'Resource', r.description),
    `# ${r.typeName} (Resource)\n\n${r.description}\n`,
    example(ex) + `<!-- generated from packages/provider-schema; do not edit -->\n## Schema\n\n${schema.text}`,
    ...schema.nested,
    settingsByType(r),
    importSection(r),
  ]
    .filter(Boolean)
    .join('\n')
}

export function dataSourceDoc(d: DataSourceDef, ex: DocExamples = {}): string {
  const schema = schemaSections(d.attributes, undefined, (t) => `### ${t}\n`)
  return [
    frontMatter(d.typeName, 'Data Source', d.description),
    `# ${d.typeName} (Data Source)\n\n${d.description}\n`,
    example(ex) + `<!-- generated from packages/provider-schema; do not edit -->\n## Schema\n\n${schema.text}`,
  ].join('\n')
}

export function providerDoc(ex: DocExamples = {}): string {
  const schema = schemaSections(providerConfig.attributes, undefined, (t) => `### ${t}\n`)
  const list = (kind: string, names: string[]) =>
    names.map((n) => `- [\`${n}\`](${kind}/${docName(n)}.md)`).join('\n')
  return [
    frontMatter('sym', 'Provider', providerConfig.description),
    `# sym Provider\n\n${providerConfig.description}\n`,
    example(ex) + `<!-- generated from packages/provider-schema; do not edit -->\n## Schema\n\n${schema.text}`,
    `## Resources\n\n${list('resources', resourceList.map((r) => r.typeName))}\n`,
    `## Data Sources\n\n${list('data-sources', dataSources.map((d) => d.typeName))}\n`,
  ].join('\n')
}

/** Every docs page by relative path (`index.md`, `resources/flow.md`, …). */
export function renderDocs(examples: (key: string) => DocExamples): Record<string, string> {
  const pages: Record<string, string> = { 'index.md': providerDoc(examples('provider')) }
  for (const r of resourceList) pages[`resources/${docName(r.typeName)}.md`] = resourceDoc(r, examples(`resources/${r.typeName}`))
  for (const d of dataSources) pages[`data-sources/${docName(d.typeName)}.md`] = dataSourceDoc(d, examples(`data-sources/${d.typeName}`))
  return pages
}
