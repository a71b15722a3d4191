// The rendezvous store (c10d's TCPStore) has no authentication: whoever reaches its port can
// read and write its keys (claim a rank, abort the run, change the addresses Gloo exchanges).
// As with torchrun, it belongs on a network only the nodes reach, so a --master that is
// routable on the internet is refused unless the user says the port is fenced off.
import { isIPv4, isIPv6 } from 'node:net';

const V4_PRIVATE: [string, number][] = [
  ['127.0.0.0', 8], // loopback
  ['10.0.0.0', 8], // RFC 1918
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['169.254.0.0', 16], // link-local
  ['100.64.0.0', 10], // shared address space (carrier-grade NAT)
  ['192.0.2.0', 24], // documentation (RFC 5737)
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
];

function v4Number(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function inV4(ip: string, [base, bits]: [string, number]): boolean {
  const size = 2 ** (32 - bits);
  return Math.floor(v4Number(ip) / size) === Math.floor(v4Number(base) / size);
}

/** The first 16-bit groups of an IPv6 address (expanded), enough for the prefixes below. */
function v6Groups(ip: string): number[] {
  const [head, tail = ''] = ip.toLowerCase().split('%')[0]!.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.map((g) => (g.includes('.') ? 0 : parseInt(g, 16)));
}

/** Loopback, private, link-local, shared or documentation addresses: never reachable from the internet. */
export function isPrivateAddress(ip: string): boolean {
  if (isIPv4(ip)) return V4_PRIVATE.some((range) => inV4(ip, range));
  if (!isIPv6(ip)) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return isPrivateAddress(mapped[1]!);
  const g = v6Groups(ip);
  if (g.every((x, i) => x === (i === 7 ? 1 : 0))) return true; // ::1
  return (g[0]! & 0xfe00) === 0xfc00 || (g[0]! & 0xffc0) === 0xfe80 || (g[0] === 0x2001 && g[1] === 0x0db8); // ULA, link-local, documentation
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
