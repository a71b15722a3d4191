// Which local address a worker's Gloo device listens on. Gloo's default takes the host
// name's address, and on stock Debian/Ubuntu hosts /etc/hosts maps the host name to
// 127.0.1.1: the peers on other machines then cannot connect. So the launcher finds the
// address this machine would reach the master from (the routing table's choice, read by
// connecting a UDP socket, which sends nothing) and hands it to its workers; an interface
// named by --iface or GLOO_SOCKET_IFNAME wins; a loopback device with a master elsewhere is
// refused, naming the interfaces to choose from.
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';

/** The launcher's choice, handed to its workers. */
export const GLOO_ADDR_ENV = 'SIMCLR_GLOO_ADDR';

export const isLoopbackAddress = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);

/** This machine's interfaces with their addresses, for messages: 'eth0 (192.0.2.1)'. */
export function interfaceList(): string {
  const all = Object.entries(networkInterfaces()).filter(([, addrs]) => addrs?.some((a) => !a.internal));
  return all.map(([name, addrs]) => `${name} (${addrs!.filter((a) => !a.internal).map((a) => a.address).join(', ')})`).join(', ') || 'none besides loopback';
}

/** The address of a named interface (IPv4 first); a name that is not there is an error listing those that are. */
export function interfaceAddress(name: string, where = '--iface'): string {
  const addrs = networkInterfaces()[name];
  const pick = addrs?.find((a) => a.family === 'IPv4') ?? addrs?.[0];
  if (!pick) throw new Error(`${where} ${name}: this machine has no such interface with an address; its interfaces: ${interfaceList()}`);
  return pick.address;
}

/** The local address that packets to `host` leave from (the routing table's choice), and the address `host` resolves to. */
export async function routeAddress(host: string): Promise<{ local: string; remote: string }> {
  const { address, family } = await lookup(host);
  const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    // connect() on a UDP socket only picks the route and the source address: nothing is sent.
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(9, address, () => resolve());
    });
    return { local: socket.address().address, remote: address };
  } finally {
    socket.close();
  }
}

/**
 * The launcher's choice for its workers' Gloo device: an interface's address (--iface), the
 * route to a master on another machine, or loopback for a master on loopback.
 */
export async function launcherGlooAddress(master: string, nnodes: number, iface?: string): Promise<string> {
  if (iface) return interfaceAddress(iface);
  if (isLoopbackAddress(master)) return '127.0.0.1';
  const { local, remote } = await routeAddress(master);
  if (nnodes > 1 && (isLoopbackAddress(local) || isLoopbackAddress(remote))) {
    throw new Error(`the master '${master}' resolves to a loopback address on this machine (${remote}), so the other nodes could not reach this one's workers: give --master as node 0's network address, or --iface NAME (this machine's interfaces: ${interfaceList()})`);
  }
  return local;
}

/** A name's address in /etc/hosts (the host name's by default), where Gloo's default device would listen; null when it is not there. */
function hostsFileAddress(name = hostname()): string | null {
  try {
    for (const line of readFileSync('/etc/hosts', 'utf8').split('\n')) {
      const [addr, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
      if (addr && names.includes(name)) return addr;
    }
  } catch {
    // no hosts file: the resolver decides
  }
  return null;
}

/**
 * In a worker: the address its Gloo device listens on ('' for Gloo's default, the host
 * name's). GLOO_SOCKET_IFNAME (as PyTorch reads it) wins, then the launcher's choice.
 */
export function workerGlooAddress(env: NodeJS.ProcessEnv, master: string, worldSize: number): string {
  if (env.GLOO_SOCKET_IFNAME) return interfaceAddress(env.GLOO_SOCKET_IFNAME.split(',')[0]!, 'GLOO_SOCKET_IFNAME');
  if (env[GLOO_ADDR_ENV]) return env[GLOO_ADDR_ENV]!;
  if (isLoopbackAddress(master) || isLoopbackAddress(hostsFileAddress(master) ?? '')) return '127.0.0.1';
  const byName = hostsFileAddress();
  if (worldSize > 1 && byName && isLoopbackAddress(byName)) {
    throw new Error(`this machine's host name maps to ${byName} in /etc/hosts, a loopback address the other workers cannot reach: set GLOO_SOCKET_IFNAME to the interface that reaches the master ${master} (this machine's interfaces: ${interfaceList()})`);
  }
  return '';
}
