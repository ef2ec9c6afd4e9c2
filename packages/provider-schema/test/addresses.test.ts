import { BlockList } from 'node:net'
import { describe, expect, it } from 'vitest'
import { isReservedAddress } from '../src/derive/addresses.js'

/** The same ranges as node:net's BlockList sees them (the arithmetic in addresses.ts must agree with it). */
function blockList(): BlockList {
  const list = new BlockList()
  for (const [net, bits] of [['0.0.0.0', 8], ['169.254.0.0', 16], ['192.0.0.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) list.addSubnet(net, bits, 'ipv4')
  for (const [net, bits] of [['::', 128], ['fe80::', 10], ['fd00:ec2::254', 128], ['ff00::', 8]] as const) list.addSubnet(net, bits, 'ipv6')
  return list
}

describe('isReservedAddress', () => {
  it('refuses link-local, metadata, "this network", multicast and reserved addresses, IPv4-mapped ones too', () => {
    for (const a of ['169.254.169.254', '169.254.0.1', '0.0.0.0', '0.1.2.3', '192.0.0.170', '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255']) expect(isReservedAddress(a), a).toBe(true)
    for (const a of ['::', 'fe80::1', 'FE80::abcd:1%eth0', 'febf:ffff::1', 'fd00:ec2::254', 'ff02::1', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '0:0:0:0:0:ffff:0.0.0.1']) expect(isReservedAddress(a), a).toBe(true)
  })

  it('lets public, private and loopback addresses through (those are the deployment’s business), and anything not an IP', () => {
    for (const a of ['8.8.8.8', '10.0.0.5', '127.0.0.1', '172.16.0.1', '192.168.1.1', '100.64.0.1', '169.253.255.255', '169.255.0.0', '192.0.1.0', '223.255.255.255']) expect(isReservedAddress(a), a).toBe(false)
    for (const a of ['::1', '2001:db8::1', 'fc00::1', 'fd00:ec2::253', 'fec0::1', 'fe7f:ffff::1', '::ffff:10.0.0.1', '::ffff:0a00:0001', '64:ff9b::a9fe:a9fe']) expect(isReservedAddress(a), a).toBe(false)
    for (const a of ['metadata.google.internal', '', '169.254.169', 'fe80::1::2']) expect(isReservedAddress(a), a).toBe(false)
  })

  it('agrees with node:net’s BlockList on the same ranges', () => {
    const list = blockList()
    const v4 = ['0.0.0.0', '1.0.0.0', '169.254.255.255', '169.255.0.0', '192.0.0.255', '192.0.1.0', '223.255.255.255', '224.0.0.0', '8.8.4.4', '127.0.0.1']
    const v6 = ['::', '::1', 'fe80::', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fec0::', 'fd00:ec2::254', 'fd00:ec2::255', 'feff::1', 'ff00::', '::ffff:224.0.0.1', '::ffff:8.8.8.8', '2001:db8::ff00:42:8329']
    for (const a of v4) expect(isReservedAddress(a), a).toBe(list.check(a, 'ipv4'))
    for (const a of v6) expect(isReservedAddress(a), a).toBe(list.check(a, 'ipv6'))
  })
})
