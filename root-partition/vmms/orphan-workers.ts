/**
 * Orphan workers: worker processes alive in the data directory (a record or a socket,
 * worker-record.ts) whose VM has no loadable definition — its file was deleted, corrupted, or
 * refused at load. VMMS does not drive them (it cannot know their settings), but never loses
 * them either: they are logged and listed (`tsvisor host orphans`, `Vmms.orphans()`), their memory
 * counts in the host budget while they live, and `tsvisor host orphans --stop <id>` turns one off.
 */
import { existsSync } from 'node:fs';
import type { DataDir } from '../host/data-dir.ts';
import type { Logger } from '../host/log.ts';
import { VmwpConnection } from './vmwp-connection.ts';
import { killWorker, liveWorker, removeWorkerFiles, workerAlive, workerIdsOnDisk, type WorkerRecord } from './worker-record.ts';

export interface OrphanWorkerView {
  vmId: string;
  /** The VM's name as recorded when the worker was launched ('' when unknown). */
  name: string;
  processId: number;
  /** Guest memory the worker holds (0 when it left no record). */
  memoryBytes: number;
  /** Why VMMS has no definition for it. */
  reason: string;
}

export class OrphanWorkers {
  private readonly found = new Map<string, { rec: WorkerRecord; reason: string }>();

  constructor(
    private readonly paths: DataDir,
    private readonly log: Logger,
  ) {}

  /** Looks for workers of VMs that are not in `defined`; `refused` holds the definition files that did not load. */
  scan(defined: Set<string>, refused: { file: string; message: string }[]): void {
    for (const id of workerIdsOnDisk(this.paths)) {
      if (defined.has(id)) continue;
      const rec = liveWorker(this.paths, id);
      if (!rec) {
        for (const p of removeWorkerFiles(this.paths, id)) this.log.error(p);
        continue;
      }
      const load = refused.find((r) => r.file === this.paths.definition(id));
      const reason = load
        ? `its definition was refused: ${load.message}`
        : existsSync(this.paths.definition(id))
          ? 'its definition did not load'
          : 'its definition file is gone';
      this.found.set(id, { rec, reason });
      this.log.warn(
        `orphan worker ${rec.pid} of VM ${id}${rec.name ? ` (${rec.name})` : ''} left running: ${reason}; it holds ${rec.memoryBytes} bytes of the memory budget; \`tsvisor host orphans --stop ${id}\` stops it`,
      );
    }
  }

  /** The orphans still alive (dead ones are forgotten and their files removed). */
  list(): OrphanWorkerView[] {
    for (const [id, o] of this.found) {
      if (workerAlive(o.rec)) continue;
      this.found.delete(id);
      for (const p of removeWorkerFiles(this.paths, id)) this.log.error(p);
      this.log.info(`orphan worker ${o.rec.pid} of VM ${id} has ended`);
    }
    return [...this.found.values()].map(({ rec, reason }) => ({ vmId: rec.vmId, name: rec.name, processId: rec.pid, memoryBytes: rec.memoryBytes, reason }));
  }

  committedBytes(): number {
    return this.list().reduce((n, o) => n + o.memoryBytes, 0);
  }

  /** Asks the orphan to turn its VM off, kills it by its pid if it does not go, removes its files. */
  async stop(vmId: string): Promise<void> {
    const o = this.found.get(vmId);
    if (!o) throw new Error(`no orphan worker of VM ${vmId}`);
    try {
      const conn = await VmwpConnection.open(this.paths.workerSocket(vmId), 1000, () => false);
      await Promise.race([conn.request('TURN_OFF', 3000).catch(() => {}), conn.whenClosed()]);
      await Promise.race([conn.whenClosed(), new Promise((r) => setTimeout(r, 3000))]);
      conn.close();
    } catch {
      /* no socket or no answer: killed below */
    }
    if (!(await killWorker(o.rec))) throw new Error(`the orphan worker ${o.rec.pid} does not exit`);
    this.found.delete(vmId);
    const problems = removeWorkerFiles(this.paths, vmId);
    this.log.info(`orphan worker ${o.rec.pid} of VM ${vmId} stopped`);
    if (problems.length) throw new Error(`the orphan worker stopped, but ${problems.join('; ')}`);
  }
}
