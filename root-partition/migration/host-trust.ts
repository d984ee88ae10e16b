/**
 * Which hosts may migrate VMs to and from this one: mutual TLS, each host presenting its own
 * certificate (the one the CIM-XML HTTPS service uses: the operator's, or the one made in the data
 * directory, vmms/tls-identity.ts) and accepting only a peer whose certificate's SHA-256
 * fingerprint is pinned in `migration-trust.json` (`tsvisor host trust <fingerprint>`). Both
 * directions are checked before a byte of the migration is read: nothing is taken from an
 * unauthenticated peer. TLS 1.3 only.
 */
import { readFileSync } from 'node:fs';
import type { TLSSocket, ConnectionOptions, TlsOptions } from 'node:tls';
import { writeFileAtomic } from '../host/atomic-file.ts';

export interface TrustedHost {
  fingerprint256: string;
  name: string;
  addedAt: string;
}

export class HostTrustError extends Error {
  constructor(
    readonly code: 'MIGRATION_ERR_UNTRUSTED_PEER' | 'MIGRATION_ERR_TRUST_FILE' | 'MIGRATION_ERR_FINGERPRINT',
    message: string,
  ) {
    super(message);
  }
}

/** AB:CD:… (32 bytes, upper-case hex, colons), as X509Certificate.fingerprint256 writes it. */
export function normalizeFingerprint(text: string): string {
  const hex = text
    .replace(/^sha256[:=]/i, '')
    .replace(/[:\s]/g, '')
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex))
    throw new HostTrustError('MIGRATION_ERR_FINGERPRINT', `"${text}" is not a SHA-256 certificate fingerprint (64 hex digits, colons allowed)`);
  return hex.match(/../g)!.join(':');
}

export function loadTrustedHosts(file: string): TrustedHost[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new HostTrustError('MIGRATION_ERR_TRUST_FILE', `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as { hosts?: unknown };
    if (!Array.isArray(v.hosts)) throw new Error('no "hosts" list');
    return v.hosts.map((h: TrustedHost) => ({
      fingerprint256: normalizeFingerprint(String(h.fingerprint256)),
      name: String(h.name ?? ''),
      addedAt: String(h.addedAt ?? ''),
    }));
  } catch (e) {
    throw new HostTrustError('MIGRATION_ERR_TRUST_FILE', `${file} is damaged: ${(e as Error).message}`);
  }
}

/** Pins a host's certificate fingerprint (again: its name is updated). */
export function trustHost(file: string, fingerprint: string, name = ''): TrustedHost {
  const fingerprint256 = normalizeFingerprint(fingerprint);
  const hosts = loadTrustedHosts(file).filter((h) => h.fingerprint256 !== fingerprint256);
  const host = { fingerprint256, name, addedAt: new Date().toISOString() };
  writeFileAtomic(file, JSON.stringify({ hosts: [...hosts, host] }, null, 2) + '\n');
  return host;
}

/** Removes a pinned host; false when it was not trusted. */
export function untrustHost(file: string, fingerprint: string): boolean {
  const fingerprint256 = normalizeFingerprint(fingerprint);
  const hosts = loadTrustedHosts(file);
  const kept = hosts.filter((h) => h.fingerprint256 !== fingerprint256);
  if (kept.length === hosts.length) return false;
  writeFileAtomic(file, JSON.stringify({ hosts: kept }, null, 2) + '\n');
  return true;
}

export interface HostIdentity {
  cert: Buffer | string;
  key: Buffer | string;
}

/** The listener's side: a client certificate is required; which one is checked by checkPeer. */
export function serverTlsOptions(id: HostIdentity): TlsOptions {
  return { cert: id.cert, key: id.key, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' };
}

/** The connecting side: its own certificate; the server's is checked by checkPeer (pinned, not by a CA). */
export function clientTlsOptions(id: HostIdentity, host: string, port: number): ConnectionOptions {
  return { host, port, cert: id.cert, key: id.key, rejectUnauthorized: false, minVersion: 'TLSv1.3', checkServerIdentity: () => undefined };
}

/** Refuses a peer that showed no certificate, or one whose fingerprint is not pinned. */
export function checkPeer(socket: TLSSocket, trusted: readonly TrustedHost[]): TrustedHost {
  const cert = socket.getPeerCertificate();
  const fp = cert && 'fingerprint256' in cert ? cert.fingerprint256 : undefined;
  if (!fp) throw new HostTrustError('MIGRATION_ERR_UNTRUSTED_PEER', 'the peer presented no certificate');
  const host = trusted.find((h) => h.fingerprint256 === fp.toUpperCase());
  if (!host)
    throw new HostTrustError(
      'MIGRATION_ERR_UNTRUSTED_PEER',
      `the peer's certificate (SHA-256 ${fp}) is not trusted on this host; pin it with \`tsvisor host trust ${fp}\` if it is the host you meant`,
    );
  return host;
}
