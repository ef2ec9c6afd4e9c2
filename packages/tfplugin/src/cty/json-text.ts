/**
 * A small strict JSON reader that keeps number literals as text (so `12345678901234567890` stays exact) and reads
 * objects into `Map`s (so a `"__proto__"` key is data). `JSON.parse` can do neither.
 */

/** A JSON number literal, kept as its source text. */
export class JsonNumberLiteral {
  constructor(readonly text: string) {}
}

/** A parsed JSON value: objects are `Map`s, numbers are {@link JsonNumberLiteral}s. */
export type JsonNode = null | boolean | string | JsonNumberLiteral | readonly JsonNode[] | ReadonlyMap<string, JsonNode>

const MAX_DEPTH = 512
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Parses JSON text or UTF-8 bytes. Throws `SyntaxError` with the offset on malformed input or duplicate keys. */
export function parseJsonText(input: string | Uint8Array): JsonNode {
  const text = typeof input === 'string' ? input : decoder.decode(input)
  let pos = 0

  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${pos}`)
  }
  const skipWs = (): void => {
    for (;;) {
      const c = text.charCodeAt(pos)
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++
      else return
    }
  }
  const readString = (): string => {
    // pos is at the opening quote
    pos++
    let out = ''
    let chunk = pos
    for (;;) {
      if (pos >= text.length) fail('unterminated string')
      const c = text.charCodeAt(pos)
      if (c === 0x22) {
        out += text.slice(chunk, pos)
        pos++
        return out
      }
      if (c < 0x20) fail('control character in string')
      if (c !== 0x5c) {
        pos++
        continue
      }
      out += text.slice(chunk, pos)
      const e = text[pos + 1]
      pos += 2
      switch (e) {
        case '"':
          out += '"'
          break
        case '\\':
          out += '\\'
          break
        case '/':
          out += '/'
          break
        case 'b':
          out += '\b'
          break
        case 'f':
          out += '\f'
          break
        case 'n':
          out += '\n'
          break
        case 'r':
          out += '\r'
          break
        case 't':
          out += '\t'
          break
        case 'u': {
          const hex = text.slice(pos, pos + 4)
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape')
          out += String.fromCharCode(parseInt(hex, 16))
          pos += 4
          break
        }
        default:
          pos -= 2
          fail('invalid escape')
      }
      chunk = pos
    }
  }
  const readValue = (depth: number): JsonNode => {
    if (depth > MAX_DEPTH) fail('nested too deeply')
    skipWs()
    const c = text[pos]
    if (c === '{') {
      pos++
      const map = new Map<string, JsonNode>()
      skipWs()
      if (text[pos] === '}') {
        pos++
        return map
      }
      for (;;) {
        skipWs()
        if (text[pos] !== '"') fail('expected object key')
        const keyAt = pos
        const key = readString()
        if (map.has(key)) {
          pos = keyAt
          fail(`duplicate object key ${JSON.stringify(key)}`)
        }
        skipWs()
        if (text[pos] !== ':') fail("expected ':'")
        pos++
        map.set(key, readValue(depth + 1))
        skipWs()
        if (text[pos] === ',') pos++
        else if (text[pos] === '}') {
          pos++
          return map
        } else fail("expected ',' or '}'")
      }
    }
    if (c === '[') {
      pos++
      const arr: JsonNode[] = []
      skipWs()
      if (text[pos] === ']') {
        pos++
        return arr
      }
      for (;;) {
        arr.push(readValue(depth + 1))
        skipWs()
        if (text[pos] === ',') pos++
        else if (text[pos] === ']') {
          pos++
          return arr
        } else fail("expected ',' or ']'")
      }
    }
    if (c === '"') return readString()
    if (text.startsWith('true', pos)) {
      pos += 4
      return true
    }
    if (text.startsWith('false', pos)) {
      pos += 5
      return false
    }
    if (text.startsWith('null', pos)) {
      pos += 4
      return null
    }
    NUMBER.lastIndex = pos
    const m = NUMBER.exec(text)
    if (m) {
      pos += m[0].length
      return new JsonNumberLiteral(m[0])
    }
    return fail(pos >= text.length ? 'unexpected end of input' : 'unexpected character')
  }

  const value = readValue(0)
  skipWs()
  if (pos !== text.length) fail('unexpected data after the JSON value')
  return value
}
