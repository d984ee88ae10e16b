/**
 * Passwords kept as scrypt hashes (RFC 7914, node:crypto) with a random salt per user, in the
 * form `scrypt$N$r$p$<salt base64>$<hash base64>`. Verification runs off the main thread (libuv's
 * pool) and compares in constant time.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** N = 2^14, r = 8, p = 1: RFC 7914's interactive-login cost, ~16 MiB and tens of ms per check. */
const DEFAULT = { N: 16384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const FORMAT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

function derive(password: string, salt: Buffer, o: { N: number; r: number; p: number }, length: number): Promise<Buffer> {
  const options: ScryptOptions = { N: o.N, r: o.r, p: o.p, maxmem: 256 * o.N * o.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password, salt, length, options, (e, key) => (e ? reject(e) : resolve(key))));
}

/** The parameters of a stored hash, or why it is not one (a hand-edited file must not make the service spin). */
export function parsePasswordHash(text: string): ParsedHash | string {
  const m = FORMAT.exec(text);
  if (!m) return 'must be scrypt$N$r$p$salt$hash (set it with `tsvisor user add`)';
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounds: N a power of two up to 2^20, r·p small; beyond that one login could take the host's memory.
  if (N < 2 || N > 1 << 20 || (N & (N - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return 'has scrypt parameters out of range';
  const salt = Buffer.from(m[4]!, 'base64');
  const hash = Buffer.from(m[5]!, 'base64');
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return 'has a salt or hash of the wrong length';
  return { N, r, p, salt, hash };
}

export async function hashPassword(password: string): Promise<string> {
  if (password.length === 0) throw new Error('an empty password is not allowed');
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, DEFAULT, KEY_BYTES);
  return `scrypt$${DEFAULT.N}$${DEFAULT.r}$${DEFAULT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** A hash of a password nobody has: checked for unknown users so that timing does not tell who exists. */
let decoy: Promise<string> | null = null;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(18).toString('base64'));
  return decoy;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parsePasswordHash(stored);
  if (typeof parsed === 'string') return false;
  // An empty password never matches, whatever the file says.
  const candidate = await derive(password, parsed.salt, parsed, parsed.hash.length);
  return timingSafeEqual(candidate, parsed.hash) && password.length > 0;
}
