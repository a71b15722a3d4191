// Who holds a claim in a cache that several jobs share (other processes, other containers,
// other hosts over NFS): a claim names its holder's host, PID and the process's start time,
// and its file's modification time is a lease the holder renews while it works. A claim is
// taken over when its holder is gone (same host: no such process, or a process with that PID
// that started at another time, the PID reused) or when its lease ran out (any host), never
// while a live holder renews it.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface Holder {
  host: string;
  pid: number;
  /** the process's start time since boot (clock ticks, /proc/PID/stat field 22); '' where unknown */
  start: string;
}

/** How long a claim stands without renewal (SIMCLR_LEASE_MS, for tests); the holder renews it four times as often. */
export function leaseMs(): number {
  const given = Number(process.env.SIMCLR_LEASE_MS);
  return Number.isFinite(given) && given >= 100 ? given : 60_000;
}

/** A process's start time, from /proc (Linux); '' elsewhere or when there is no such process. */
export function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

let self: Holder | null = null;
export function me(): Holder {
  return (self ??= { host: hostname(), pid: process.pid, start: processStart(process.pid) });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** A claim file's holder; a bare PID (claims of earlier versions) is taken as this host's, start unknown. */
export function parseHolder(text: string): Holder | null {
  if (/^\d+$/.test(text.trim())) return { host: me().host, pid: Number(text.trim()), start: '' };
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    return typeof h.host === 'string' && Number.isInteger(h.pid) && typeof h.start === 'string' ? (h as Holder) : null;
  } catch {
    return null;
  }
}

export const isMe = (h: Holder): boolean => h.host === me().host && h.pid === me().pid && h.start === me().start;

/**
 * Why a claim may be taken over, or null while its holder may still be working: a holder
 * on this host that is gone or whose PID was reused, or a lease (the claim file's age, ms)
 * that ran out.
 */
export function whyStale(h: Holder | null, ageMs: number): string | null {
  if (!h) return 'it is unreadable';
  if (h.host === me().host) {
    if (!alive(h.pid)) return `process ${h.pid} is gone`;
    if (h.start && processStart(h.pid) !== h.start) return `process ${h.pid} is gone (its PID is another process's now)`;
  }
  if (ageMs > leaseMs()) return `its lease ran out ${(ageMs / 1000).toFixed(0)} s after it was last renewed (pid ${h.pid} on ${h.host})`;
  return null;
}

/** A temporary file's suffix naming its writer, so that a sweep elsewhere can tell whose it is. */
export const tempSuffix = (): string => `.tmp-${me().host.replace(/[^A-Za-z0-9-]/g, '_')}-${me().pid}`;

/** A temporary file's writer from its name: this host's (with its PID) or another's; null for other names. */
export function tempWriter(name: string): { here: boolean; pid: number } | null {
  const m = /\.tmp-(?:(.+)-)?(\d+)$/.exec(name);
  if (!m) return null;
  // A name without a host is an earlier version's, written on this host.
  return { here: m[1] === undefined || m[1] === me().host.replace(/[^A-Za-z0-9-]/g, '_'), pid: Number(m[2]) };
}

export { alive as processAlive };
