/**
 * Live migration, destination side (runs in the new worker process): reads HELLO, memory frames
 * straight into the new partition's guest memory, then the VM's state records, which the
 * saved-state reader's own checks validate (order, counts, VP and device records); the worker
 * restores from them. `commit` then reports READY and waits for the source's GO; only after GO
 * does the VM run here (the worker sends RUNNING once it does).
 */
import { decodeRecord } from '../ipc/saved-state-schema.ts';
import { StateBuilder } from '../vmwp/saved-state-file.ts';
import type { RestorableState, RestoreTiming } from '../vmwp/vm-worker.ts';
import type { MigrationChannel } from './migration-channel.ts';
import type { DiskCopyTarget } from './disk-copy-target.ts';
import {
  decodeDiskBlocks,
  decodeJson,
  decodePages,
  decodeZeroPages,
  encodeFrame,
  encodeJsonFrame,
  MigrationFrame,
  MigrationProtocolError,
  MIGRATION_PROTOCOL_VERSION,
  PAGE_BYTES,
} from './migration-wire.ts';

export interface MigrationHello {
  protocol: number;
  configurationHash: string;
  memoryBytes: number;
  /** A storage move: the drives (disk-copy-target.ts StorageMoveTargets once this host's VMMS made the copies). */
  storage?: unknown;
  [key: string]: unknown;
}

/** A source silent this long is gone (a network that dropped without a reset): the VM does not run here. */
export const RECEIVE_IDLE_MS = 60_000;

/** How long the destination waits for the source's GO once it reported READY. */
export const GO_TIMEOUT_MS = 60_000;

/**
 * The state, and how long the VM has been paused by now: the source's pause time on its wall
 * clock, bounded by this host's own time since HELLO (the pause came after it), so a skewed
 * clock on either host can make the guest's time neither go back nor leap ahead.
 */
export type MigratedState = RestorableState & { blackoutMs: () => number };

/**
 * `disks` receives a storage move's drives (the new images, opened at HELLO, closed complete at
 * the end; closed on any failure): a move with storage to a worker without it is refused.
 */
export async function receiveMigration(
  channel: MigrationChannel,
  memory: Uint8Array,
  configurationHash: Buffer,
  disks?: DiskCopyTarget,
): Promise<MigratedState> {
  try {
    return await receive(channel, memory, configurationHash, disks);
  } catch (e) {
    disks?.close();
    throw e;
  }
}

async function receive(channel: MigrationChannel, memory: Uint8Array, configurationHash: Buffer, disks?: DiskCopyTarget): Promise<MigratedState> {
  const helloAt = Date.now();
  let pausedAtMs = Number.NaN;
  const hello = decodeJson<MigrationHello>(await channel.expect(MigrationFrame.Hello, 'HELLO', RECEIVE_IDLE_MS), 'HELLO');
  if (hello.protocol !== MIGRATION_PROTOCOL_VERSION)
    throw new MigrationProtocolError(`the source speaks migration protocol ${hello.protocol}; this host speaks ${MIGRATION_PROTOCOL_VERSION}`);
  if (hello.memoryBytes !== memory.byteLength)
    throw new MigrationProtocolError(`the source's VM has ${hello.memoryBytes} bytes of memory; the one made here has ${memory.byteLength}`);
  if (hello.configurationHash !== configurationHash.toString('hex')) {
    throw new MigrationProtocolError(
      'the source runs another configuration (VM id, memory size, VP count or guest image bytes differ from what this host has for the VM)',
    );
  }
  const moving = hello.storage !== undefined;
  if (moving) {
    if (!disks) throw new MigrationProtocolError("the source moves the VM's storage; this host did not prepare copies of its drives");
    disks.open(hello.storage);
  }
  const pageCount = memory.byteLength / PAGE_BYTES;
  const state = new StateBuilder('the migration stream', memory);
  for (let n = 0; ; ) {
    const f = await channel.next(RECEIVE_IDLE_MS);
    switch (f.type) {
      case MigrationFrame.Pages:
        decodePages(f.body, pageCount, (pfn, bytes) => memory.set(bytes, pfn * PAGE_BYTES));
        break;
      case MigrationFrame.DiskBlocks:
        if (!moving) throw new MigrationProtocolError('DISK_BLOCKS in a migration without storage');
        decodeDiskBlocks(f.body, disks!.diskBytes, (disk, block, bytes) => disks!.write(disk, block, bytes));
        break;
      case MigrationFrame.ZeroPages:
        decodeZeroPages(f.body, pageCount, (pfn) => memory.fill(0, pfn * PAGE_BYTES, (pfn + 1) * PAGE_BYTES));
        break;
      case MigrationFrame.StateRecord: {
        let r: ReturnType<typeof decodeRecord>;
        try {
          r = decodeRecord(f.body);
        } catch (e) {
          throw new MigrationProtocolError(`state record #${n} is unreadable: ${(e as Error).message}`);
        }
        if ('memoryRun' in r) throw new MigrationProtocolError(`state record #${n}: memory comes in PAGES frames, not in state records`);
        const end = state.add(r, n++, 0);
        if (end) {
          await channel.expect(MigrationFrame.Done, 'DONE after the end record', RECEIVE_IDLE_MS);
          if (Number.isNaN(pausedAtMs)) throw new MigrationProtocolError('the source never said when it paused the VM (no BLACKOUT frame)');
          if (moving) disks!.finish();
          const paused = pausedAtMs;
          return { ...state.result(), blackoutMs: () => Math.max(0, Math.min(Date.now() - paused, Date.now() - helloAt)) };
        }
        break;
      }
      case MigrationFrame.Progress:
        break;
      case MigrationFrame.Blackout: {
        const t = decodeJson<{ pausedAtMs?: unknown }>(f, 'BLACKOUT').pausedAtMs;
        if (typeof t !== 'number' || !Number.isFinite(t)) throw new MigrationProtocolError('BLACKOUT carries no time');
        pausedAtMs = t;
        break;
      }
      default:
        throw new MigrationProtocolError(`unexpected frame type ${f.type} in the migration stream`);
    }
  }
}

/**
 * READY (carrying where the restore's time went, for the source's summary), then the source's GO
 * (or its ABORT, a dropped connection, or the time-out: the VM must not run here).
 */
export async function commitMigration(channel: MigrationChannel, timing?: RestoreTiming, timeoutMs = GO_TIMEOUT_MS): Promise<void> {
  await channel.send(timing ? encodeJsonFrame(MigrationFrame.Ready, timing) : encodeFrame(MigrationFrame.Ready));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      channel.expect(MigrationFrame.Go, 'GO'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the source did not commit within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The VM runs here: the source may let its copy go. */
export function reportRunning(channel: MigrationChannel): void {
  channel.send(encodeFrame(MigrationFrame.Running)).catch(() => {});
}
