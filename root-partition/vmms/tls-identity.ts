/**
 * The certificate HTTPS (5989) is served with: the operator's certificate and key when given,
 * else one made at first start into the data directory (`cim-tls.crt`, `cim-tls.key`, the key
 * 0600) by openssl(1) — a self-signed P-256 certificate for this host name, localhost, 127.0.0.1
 * and ::1 — and kept for later starts. Clients pin it by its SHA-256 fingerprint, which the
 * service prints at start (`wbemcli -cacert cim-tls.crt`, or `-noverify` for a quick look).
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const TLS_CERT_FILE = 'cim-tls.crt';
export const TLS_KEY_FILE = 'cim-tls.key';

export interface TlsIdentity {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly certFile: string;
  /** SHA-256 of the DER certificate, as colon-separated hex (X509Certificate.fingerprint256). */
  readonly fingerprint256: string;
  readonly generated: boolean;
}

function generate(certFile: string, keyFile: string): void {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'localhost';
  const tmpKey = `${keyFile}.tmp-${process.pid}`;
  const tmpCert = `${certFile}.tmp-${process.pid}`;
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-sha256',
        '-days',
        '3650',
        '-keyout',
        tmpKey,
        '-out',
        tmpCert,
        '-subj',
        `/CN=${host}`,
        '-addext',
        `subjectAltName=DNS:${host},DNS:localhost,IP:127.0.0.1,IP:::1`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 },
    );
    chmodSync(tmpKey, 0o600);
    renameSync(tmpKey, keyFile);
    renameSync(tmpCert, certFile);
  } catch (e) {
    rmSync(tmpKey, { force: true });
    rmSync(tmpCert, { force: true });
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`could not make a TLS certificate with openssl (${stderr || (e as Error).message}); give one with --tls-cert and --tls-key`);
  }
}

export function loadTlsIdentity(dataDir: string, given: { certFile?: string; keyFile?: string } = {}): TlsIdentity {
  if (Boolean(given.certFile) !== Boolean(given.keyFile)) throw new Error('--tls-cert and --tls-key go together');
  let certFile = given.certFile;
  let keyFile = given.keyFile;
  let generated = false;
  if (!certFile || !keyFile) {
    certFile = join(dataDir, TLS_CERT_FILE);
    keyFile = join(dataDir, TLS_KEY_FILE);
    if (!existsSync(certFile) || !existsSync(keyFile)) {
      generate(certFile, keyFile);
      generated = true;
    }
  }
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate');
  } catch (e) {
    throw new Error(`TLS certificate ${certFile} / key ${keyFile}: ${(e as Error).message}`);
  }
  return { cert, key, certFile, fingerprint256: x509.fingerprint256, generated };
}
