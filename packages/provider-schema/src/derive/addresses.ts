/**
 * Addresses that no URL an org configures may reach, whatever the deployment allows: link-local (cloud metadata
 * services answer at 169.254.169.254 and fd00:ec2::254), "this network" (0.0.0.0/8, ::), 192.0.0.0/24, multicast
 * and reserved ranges. The engine refuses them on every outbound connection its org data directs, after DNS
 * (packages/engine/src/outbound.ts); settings validation refuses a URL that names one literally, at apply time.
 */
import { BlockList, isIP } from 'node:net'

const reserved = new BlockList()
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['169.254.0.0', 16],
  ['192.0.0.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) reserved.addSubnet(net, bits, 'ipv4')
for (const [net, bits] of [
  ['::', 128],
  ['fe80::', 10],
  ['fd00:ec2::254', 128],
  ['ff00::', 8],
] as const) reserved.addSubnet(net, bits, 'ipv6')

/** Whether `address`, an IP address (IPv4-mapped IPv6 counts as IPv4), is in a range never to be reached. */
export function isReservedAddress(address: string): boolean {
  const family = isIP(address)
  return family !== 0 && reserved.check(address, family === 4 ? 'ipv4' : 'ipv6')
}
