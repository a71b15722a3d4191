// The rendezvous store (c10d's TCPStore) has no authentication: whoever reaches its port can
// read and write its keys (claim a rank, abort the run, change the addresses Gloo exchanges).
// As with torchrun, it belongs on a network only the nodes reach, so a --master that is
// routable on the internet is refused unless the user says the port is fenced off.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Addresses never reachable from the internet (node:net's BlockList also matches IPv4-mapped IPv6 ones against the IPv4 ranges). */
const PRIVATE = new BlockList();
for (const [base, bits] of [
  ['127.0.0.0', 8], // loopback
  ['10.0.0.0', 8], // RFC 1918
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['169.254.0.0', 16], // link-local
  ['100.64.0.0', 10], // shared address space (carrier-grade NAT)
  ['192.0.2.0', 24], // documentation (RFC 5737)
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
] as const) {
  PRIVATE.addSubnet(base, bits, 'ipv4');
}
PRIVATE.addAddress('::1', 'ipv6'); // loopback
PRIVATE.addSubnet('fc00::', 7, 'ipv6'); // unique local
PRIVATE.addSubnet('fe80::', 10, 'ipv6'); // link-local
PRIVATE.addSubnet('2001:db8::', 32, 'ipv6'); // documentation

/** Loopback, private, link-local, shared or documentation addresses: never reachable from the internet. */
export function isPrivateAddress(ip: string): boolean {
  const address = ip.split('%')[0]!; // a link-local address's zone (fe80::1%eth0)
  if (isIPv4(address)) return PRIVATE.check(address, 'ipv4');
  return isIPv6(address) && PRIVATE.check(address, 'ipv6');
}

/** Why the master address is refused, or null when it is private or the user allowed a public one. */
export function publicRendezvousProblem(master: string, resolved: string, allowPublic: boolean): string | null {
  if (allowPublic || isPrivateAddress(resolved)) return null;
  const named = master === resolved ? master : `${master} (${resolved})`;
  return (
    `the rendezvous address ${named} is routable on the internet: its store has no authentication, so anyone who reaches the port could join or abort the run. ` +
    `Use node 0's address on a private network, or, if a firewall lets only the nodes reach the port, pass --allow-public-rendezvous`
  );
}
