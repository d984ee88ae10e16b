/**
 * The VMMS client socket's migration requests (client-server.ts hands them here): `move` (with
 * progress pushed on the connection as `{ id, progress }` lines before the answer),
 * `move-cancel`, and the host trust list: `host-show`, `host-trust`, `host-untrust`.
 */
import type { Vmms } from '../vmms/vmms.ts';
import { loadTrustedHosts, trustHost, untrustHost } from './host-trust.ts';
import type { MigrationProgress } from './migration-source.ts';

export const MIGRATION_CLIENT_METHODS = ['move', 'move-cancel', 'host-show', 'host-trust', 'host-untrust'] as const;
export type MigrationClientMethod = (typeof MIGRATION_CLIENT_METHODS)[number];

function requestError(message: string): Error {
  return Object.assign(new Error(message), { code: 'VMMS_ERR_REQUEST' });
}

/** "host:port" or "[v6]:port". */
export function parseDestination(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw requestError(`"${text}" is not host:port`);
  return { host: m[1] ?? m[2]!, port };
}

/** A storage move's destination directory: an absolute path (the destination checks it against its storage roots). */
export function storageDirectory(v: unknown): string {
  if (typeof v !== 'string' || !v.startsWith('/') || v.length > 4096 || v.includes('\0'))
    throw requestError('the storage directory must be an absolute path on the destination');
  return v;
}

export async function callMigrationMethod(
  vmms: Vmms,
  method: MigrationClientMethod,
  p: Record<string, unknown>,
  push: (progress: MigrationProgress) => void,
): Promise<unknown> {
  const service = vmms.migration;
  const str = (key: string) => {
    if (typeof p[key] !== 'string') throw requestError(`params.${key} is required`);
    return p[key] as string;
  };
  switch (method) {
    case 'host-show':
      return { fingerprint256: service?.fingerprint256 ?? null, migrationPort: service?.port ?? null, trusted: loadTrustedHosts(vmms.paths.migrationTrust) };
    case 'host-trust':
      return trustHost(vmms.paths.migrationTrust, str('fingerprint'), typeof p.name === 'string' ? p.name : '');
    case 'host-untrust':
      return { removed: untrustHost(vmms.paths.migrationTrust, str('fingerprint')) };
    case 'move-cancel':
      await vmms.cancelMove(str('vm'));
      return { cancelling: true };
    case 'move': {
      if (!service)
        throw Object.assign(new Error('this service has no migration identity (it was not started as a daemon)'), { code: 'MIGRATION_ERR_UNAVAILABLE' });
      const tuning = typeof p.downtimeMs === 'number' ? { downtimeTargetMs: p.downtimeMs } : undefined;
      const storage = p.storage === undefined ? undefined : storageDirectory(p.storage);
      return service.move(str('vm'), { ...parseDestination(str('to')), ...(tuning ? { tuning } : {}), ...(storage ? { storage } : {}) }, push);
    }
  }
}
