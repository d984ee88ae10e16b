/**
 * The management provider's view of live migration (management/provider/vmms-port.ts
 * MigrationPort): Msvm_VirtualSystemMigrationService's job moves the VM through the same
 * MigrationService as `tsvisor vm move`, with its progress and its cancel.
 */
import type { MigrationPort } from '../management/provider/vmms-port.ts';
import type { Vmms } from '../vmms/vmms.ts';
import { parseDestination } from './migration-client-methods.ts';

export function migrationPort(vmms: Vmms): MigrationPort {
  return {
    move: async (vmId, destination, onProgress, storage) => {
      const service = vmms.migration;
      if (!service) return { returnValue: 32770, error: 'this host takes no part in live migration (the service was not started as a daemon)' };
      let to: ReturnType<typeof parseDestination>;
      try {
        to = parseDestination(destination);
      } catch (e) {
        return { returnValue: 32773, error: `DestinationHost ${(e as Error).message} (the destination's migration port)` };
      }
      try {
        await service.move(vmId, { ...to, ...(storage !== undefined ? { storage } : {}) }, (p) =>
          onProgress({ phase: p.phase, percentComplete: p.percentComplete }),
        );
        return { returnValue: 0 };
      } catch (e) {
        const code = (e as { code?: string }).code;
        return { returnValue: 32768, error: (e as Error).message, cancelled: code === 'MIGRATION_ERR_CANCELLED' };
      }
    },
    cancel: (vmId) => {
      // The job says how it ended; a cancel that comes too late (past the commit point) changes nothing.
      vmms.cancelMove(vmId).catch(() => {});
    },
  };
}
