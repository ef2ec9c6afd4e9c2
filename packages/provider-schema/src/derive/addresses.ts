/**
 * Addresses that no URL an org configures may reach, whatever the deployment allows: link-local (cloud metadata
 * services answer at 169.254.169.254 and fd00:ec2::254), "this network" (0.0.0.0/8, ::), 192.0.0.0/24, multicast
 * and reserved ranges. The engine refuses them on every outbound connection its org data directs, after DNS
 * (packages/engine/src/outbound.ts); settings validation refuses a URL that names one literally, at apply time.
 *
 * Plain arithmetic rather than `net.BlockList`: this module is part of the provider's V8 startup snapshot, which
 * cannot hold native objects.
 */
import { isIP } from 'node:net'

/** IPv4 ranges as [first address, prefix length]. */
const RESERVED_V4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8],
  ['169.254.0.0', 16],
  ['192.0.0.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
]
/** IPv6 ranges as [first address, prefix length]. */
const RESERVED_V6: ReadonlyArray<readonly [string, number]> = [
  ['::', 128],
  ['fe80::', 10],
  ['fd00:ec2::254', 128],
  ['ff00::', 8],
]

/** A dotted-quad IPv4 address as an unsigned 32-bit number. */
function v4Number(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0)
}

/** An IPv6 address (as `isIP` accepts it: `::` compression, a dotted IPv4 tail, a zone) as its eight 16-bit words. */
function v6Words(address: string): number[] {
  let text = address.toLowerCase().replace(/%.*$/, '')
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1]
  if (dotted) {
    const n = v4Number(dotted)
    text = `${text.slice(0, -dotted.length)}${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const words = (part: string) => (part ? part.split(':').map((w) => parseInt(w, 16)) : [])
  const [h, t] = [words(head), words(tail ?? '')]
  return tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t]
}

const v4Ranges = RESERVED_V4.map(([net, bits]) => ({ first: v4Number(net), size: 2 ** (32 - bits) }))
const v6Ranges = RESERVED_V6.map(([net, bits]) => ({ words: v6Words(net), bits }))

const inV4 = (n: number) => v4Ranges.some((r) => n >= r.first && n < r.first + r.size)

function inV6(words: readonly number[], range: { readonly words: readonly number[]; readonly bits: number }): boolean {
  for (let i = 0, bits = range.bits; bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff
    if ((words[i]! & mask) !== (range.words[i]! & mask)) return false
  }
  return true
}

/** Whether `address`, an IP address (IPv4-mapped IPv6 counts as IPv4), is in a range never to be reached. */
export function isReservedAddress(address: string): boolean {
  const family = isIP(address)
  if (family === 4) return inV4(v4Number(address))
  if (family !== 6) return false
  const words = v6Words(address)
  // ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) return inV4(words[6]! * 65536 + words[7]!)
  return v6Ranges.some((r) => inV6(words, r))
}
