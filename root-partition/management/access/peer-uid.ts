/**
 * The local user at the other end of a TCP connection, the identd way (RFC 1413's idea, read
 * from the kernel instead of asked over the network): Linux lists every TCP socket of the
 * network namespace with its owner's uid in /proc/net/tcp and /proc/net/tcp6 (proc(5)). The
 * client's socket is the entry whose local end is the connection's remote address and port and
 * whose remote end is ours. Node offers no SO_PEERCRED for TCP, and this is what it would say.
 *
 * Only live sockets count: TIME_WAIT entries and orphans print uid 0 and inode 0 (they belong
 * to nobody any more), so a client that closes at once must not pass for root.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';

export interface TcpEnd {
  readonly address: string;
  readonly port: number;
}

/** /proc/net/tcp states (include/net/tcp_states.h) in which the socket still belongs to its process. */
const LIVE_STATES = new Set(['01', '04', '05']); // ESTABLISHED, FIN_WAIT1, FIN_WAIT2

function ipv6Bytes(address: string): number[] | null {
  let text = address;
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipv4Bytes(v4[1]!);
    if (!b) return null;
    tail = b;
    text = `${text.slice(0, -v4[1]!.length)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const words = (s: string) => (s === '' ? [] : s.split(':'));
  const head = words(halves[0]!);
  const rest = halves.length === 2 ? words(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return null;
  const all = [...head, ...Array<string>(fill).fill('0'), ...rest];
  const bytes: number[] = [];
  for (const w of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(w)) return null;
    const n = parseInt(w, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

function ipv4Bytes(address: string): number[] | null {
  const parts = address.split('.').map(Number);
  return parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255) ? parts : null;
}

/**
 * An address as /proc/net/tcp* prints it: each 32-bit word of the network-order address printed
 * with %08X as the host holds it, so a little-endian host shows 127.0.0.1 as 0100007F.
 */
export function procAddress(end: TcpEnd, little = endianness() === 'LE'): { table: 'tcp' | 'tcp6'; text: string } | null {
  const v4 = end.address.includes(':') ? null : ipv4Bytes(end.address);
  const bytes = v4 ?? (end.address.includes(':') ? ipv6Bytes(end.address) : null);
  if (!bytes || !Number.isInteger(end.port) || end.port < 0 || end.port > 65535) return null;
  let hex = '';
  for (let i = 0; i < bytes.length; i += 4) {
    const word = bytes.slice(i, i + 4);
    hex += (little ? word.reverse() : word).map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  return { table: v4 ? 'tcp' : 'tcp6', text: `${hex.toUpperCase()}:${end.port.toString(16).toUpperCase().padStart(4, '0')}` };
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack listener reports) as IPv4. */
function unmapped(end: TcpEnd): TcpEnd {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(end.address);
  return m ? { address: m[1]!, port: end.port } : end;
}

/** The uid owning the client's end of the connection `client` → `server`, or null when it cannot be told. */
export function tcpPeerUid(client: TcpEnd, server: TcpEnd, read: (file: string) => string = (f) => readFileSync(f, 'utf8')): number | null {
  // A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d, while the client's own socket,
  // an IPv4 one, is listed in /proc/net/tcp under the plain address. Look there first.
  const c4 = unmapped(client);
  const s4 = unmapped(server);
  if (c4 !== client && s4 !== server) {
    const uid = lookup(c4, s4, read);
    if (uid !== null) return uid;
  }
  return lookup(client, server, read);
}

function lookup(client: TcpEnd, server: TcpEnd, read: (file: string) => string): number | null {
  const local = procAddress(client);
  const remote = procAddress(server);
  if (!local || !remote || local.table !== remote.table) return null;
  let table: string;
  try {
    table = read(`/proc/net/${local.table}`);
  } catch {
    return null;
  }
  for (const line of table.split('\n').slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[1] !== local.text || f[2] !== remote.text) continue;
    if (!LIVE_STATES.has(f[3]!) || f[9] === '0') return null;
    const uid = Number(f[7]);
    return Number.isInteger(uid) && uid >= 0 ? uid : null;
  }
  return null;
}
