/**
 * The layout of a tsvisor data directory, shared by VMMS and its workers:
 *
 *   vms/<id>.json         VM definitions (atomic writes)
 *   saved/<id>.vmrs       saved states of Saved VMs
 *   checkpoints/<id>/     each VM's checkpoint tree and checkpoint saved states (checkpoint-store.ts)
 *   logs/vmms.log, logs/vmwp-<id>.log, logs/vmwp-<id>.out   JSON-line logs; a worker's stdio
 *   vmms.sock             the VMMS client socket
 *   vmms.lock             flock(2)ed by the running VMMS for its whole life (vmms-lock.ts)
 *   vmms.pid              the process that runs the VMMS of this directory (informational)
 *   vmwp-<id>.sock        each running VM's worker socket
 *   vmwp-<id>.pid         each running VM's worker: pid and process start time (worker-record.ts)
 *   vmwp-<id>.migrate.sock  an arriving VM's worker: the live-migration stream VMMS hands on
 *   migration-trust.json  the hosts trusted to migrate VMs in and out (migration/host-trust.ts)
 *   switches/<id>.json    virtual switch definitions (atomic writes)
 *   switch-<id>.sock      each virtual switch's socket, served by VMMS; VM workers connect their NICs
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** $XDG_DATA_HOME/tsvisor, or ~/.local/share/tsvisor. */
export function defaultDataDir(): string {
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'tsvisor');
}

export class DataDir {
  constructor(readonly root: string) {}
  get vmsDir(): string {
    return join(this.root, 'vms');
  }
  get savedDir(): string {
    return join(this.root, 'saved');
  }
  get logsDir(): string {
    return join(this.root, 'logs');
  }
  get checkpointsDir(): string {
    return join(this.root, 'checkpoints');
  }
  get vmmsSocket(): string {
    return join(this.root, 'vmms.sock');
  }
  get vmmsLock(): string {
    return join(this.root, 'vmms.lock');
  }
  get vmmsPid(): string {
    return join(this.root, 'vmms.pid');
  }
  definition(id: string): string {
    return join(this.vmsDir, `${id}.json`);
  }
  savedState(id: string): string {
    return join(this.savedDir, `${id}.vmrs`);
  }
  workerSocket(id: string): string {
    return join(this.root, `vmwp-${id}.sock`);
  }
  workerRecord(id: string): string {
    return join(this.root, `vmwp-${id}.pid`);
  }
  migrationSocket(id: string): string {
    return join(this.root, `vmwp-${id}.migrate.sock`);
  }
  get migrationTrust(): string {
    return join(this.root, 'migration-trust.json');
  }
  workerOutput(id: string): string {
    return join(this.logsDir, `vmwp-${id}.out`);
  }
  get switchesDir(): string {
    return join(this.root, 'switches');
  }
  switchDefinition(id: string): string {
    return join(this.switchesDir, `${id}.json`);
  }
  switchSocket(id: string): string {
    return join(this.root, `switch-${id}.sock`);
  }
  /** Where an internal switch's passt listens. */
  passtSocket(id: string): string {
    return join(this.root, `passt-${id}.sock`);
  }
}
