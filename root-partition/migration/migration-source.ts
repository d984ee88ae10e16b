/**
 * Live migration, source side (runs in the VM's worker process): pre-copy, then switch-over.
 *
 * Pre-copy sends every non-zero page while the guest runs, then, in rounds, the pages that
 * changed since they were sent (page-tracker.ts), until one round's pages would go within the
 * downtime target at the bandwidth measured so far, or the rounds stop shrinking, or the round
 * limit is reached (QEMU's rule, migration/ram.c). A storage move (`storage`) adds each round's
 * dirty drive blocks after the memory (disk-copy-stream.ts), and the round's bytes, pages and
 * blocks together, decide convergence. Switch-over pauses the VM, captures it and
 * stops its devices (the disks' locks go; a storage move's last dirty blocks are sent just before),
 * sends the last changed pages and the VM's state, and
 * waits for the destination to report it restored (READY). Only then does the source commit
 * (GO): until GO any failure or a cancel resumes the VM here. After GO the source never resumes
 * on its own: when RUNNING does not come back the destination may be running the VM, so the
 * VM stays paused here and the error says the outcome is unknown.
 */
import { encodeRecord, type SavedRecord } from '../ipc/saved-state-schema.ts';
import { CAPTURE_AREA_GPA, captureAreaSize } from '../../hypervisor/vp/vp-capture.ts';
import type { CapturedVm, RestoreTiming } from '../vmwp/vm-worker.ts';
import type { MigrationChannel } from './migration-channel.ts';
import {
  encodeFrame,
  encodeJsonFrame,
  encodePages,
  encodeZeroPages,
  MAX_PAGES_PER_FRAME,
  MAX_ZERO_PAGES_PER_FRAME,
  MigrationFrame,
  MIGRATION_PROTOCOL_VERSION,
  PAGE_BYTES,
  type Frame,
} from './migration-wire.ts';
import { ShadowPageTracker, type DirtyScan } from './page-tracker.ts';
import { DiskCopyStream, type StorageMoveVm } from './disk-copy-stream.ts';

export interface MigrationTuning {
  /** The pause the last round must fit in, at the measured bandwidth (QEMU's downtime-limit). */
  downtimeTargetMs: number;
  /** Pre-copy rounds at most (the first, full one included). */
  maxRounds: number;
  /** How long the source waits for the destination's READY, then RUNNING. */
  replyTimeoutMs: number;
}

export const DEFAULT_TUNING: MigrationTuning = { downtimeTargetMs: 100, maxRounds: 30, replyTimeoutMs: 60_000 };

export type MigrationPhase = 'pre-copy' | 'switch-over' | 'committing' | 'completed';

export interface MigrationProgress {
  phase: MigrationPhase;
  round: number;
  pagesSent: number;
  bytesSent: number;
  /** 0..100: pre-copy's first round is most of the work. */
  percentComplete: number;
}

export interface MigrationSummary {
  rounds: number;
  /** Pages sent in each pre-copy round, then in the final (paused) one. */
  pagesPerRound: number[];
  /** A storage move's drive blocks (64 KiB) sent in each round, the paused one last; [] without storage. */
  diskBlocksPerRound: number[];
  /** Bytes of drive blocks sent (a storage move). */
  diskBytesSent: number;
  zeroPagesSent: number;
  bytesSent: number;
  totalMs: number;
  preCopyMs: number;
  /** Pause to RUNNING, as the source saw it: the VM ran nowhere in between. */
  downtimeMs: number;
  /** Parts of the downtime: capture (pause, devices, VPs), final pages and state sent, destination restore to READY, GO to RUNNING. */
  captureMs: number;
  finalSendMs: number;
  restoreMs: number;
  commitMs: number;
  /** The capture's parts (captureMs): parking the VPs, saving the devices, capturing the VPs, stopping the device thread (the disks' locks go). */
  capture: CapturedVm['timing'];
  /** The destination's restore (part of restoreMs), as it reported it with READY; null from a destination that did not. */
  destination: RestoreTiming | null;
  /** Bytes a second over pre-copy. */
  preCopyBytesPerSecond: number;
  /** Why pre-copy ended: 'converged', 'not-converging', 'round-limit'. */
  stopReason: string;
}

export interface MigrationSourceVm extends Partial<StorageMoveVm> {
  readonly migrationMemory: Uint8Array;
  configurationHash(): Buffer;
  captureForMigration(hooks?: { memoryFrozen?: () => void; beforeStopDevices?: () => Promise<void>; deferStopDevices?: boolean }): Promise<CapturedVm>;
  /** Whether the VM has drives: a shared-storage move must release them inside the pause. */
  readonly hasDrives?: boolean;
  resumeAfterMigration(captured: CapturedVm, run: boolean): Promise<void>;
}

export class MigrationError extends Error {
  constructor(
    readonly code: 'MIGRATION_ERR_CANCELLED' | 'MIGRATION_ERR_FAILED' | 'MIGRATION_ERR_OUTCOME_UNKNOWN',
    message: string,
  ) {
    super(message);
  }
}

/** Pages scanned per step: one PAGES frame at most comes of it, so the buffers stay bounded. */
const SCAN_STEP = MAX_PAGES_PER_FRAME;

/** Collects one scan step's pages into at most one PAGES and one ZERO_PAGES frame. */
class PageBatch {
  private readonly pfns = new Uint32Array(MAX_PAGES_PER_FRAME);
  private readonly data = Buffer.allocUnsafe(MAX_PAGES_PER_FRAME * PAGE_BYTES);
  private readonly zeros = new Uint32Array(MAX_ZERO_PAGES_PER_FRAME);
  private count = 0;
  private zeroCount = 0;
  zeroPages = 0;

  readonly add = (pfn: number, bytes: Buffer, zero: boolean): void => {
    if (zero) {
      this.zeros[this.zeroCount++] = pfn;
      this.zeroPages++;
      return;
    }
    this.pfns[this.count] = pfn;
    bytes.copy(this.data, this.count * PAGE_BYTES);
    this.count++;
  };

  async flush(channel: MigrationChannel): Promise<void> {
    if (this.count) await channel.send(encodePages(this.pfns, this.count, this.data));
    if (this.zeroCount) await channel.send(encodeZeroPages(this.zeros, this.zeroCount));
    this.count = 0;
    this.zeroCount = 0;
  }
}

export interface MigrateOutOptions {
  /** What the destination VMMS needs to take the VM (its definition), sent in HELLO. */
  hello: Record<string, unknown>;
  tuning?: Partial<MigrationTuning>;
  onProgress?: (p: MigrationProgress) => void;
  /** Checked between steps: true cancels (only before GO). */
  cancelled?: () => boolean;
  /** Moves the drives too (shared-nothing): their copies go into this directory on the destination. */
  storage?: { dir: string };
  /** Which dirty-page detection (tests and the bench compare them); the shadow copy by default. */
  tracker?: (memory: Uint8Array) => DirtyScan;
}

export async function migrateOut(vm: MigrationSourceVm, channel: MigrationChannel, o: MigrateOutOptions): Promise<MigrationSummary> {
  const tuning = { ...DEFAULT_TUNING, ...o.tuning };
  const t0 = performance.now();
  const memory = vm.migrationMemory;
  const tracker = (o.tracker ?? ((m) => new ShadowPageTracker(m)))(memory);
  const batch = new PageBatch();
  const pagesPerRound: number[] = [];
  const progress = (phase: MigrationPhase, percentComplete: number) =>
    o.onProgress?.({ phase, round: pagesPerRound.length, pagesSent: pagesPerRound.reduce((a, b) => a + b, 0), bytesSent: channel.bytesSent, percentComplete });
  const checkCancel = () => {
    if (o.cancelled?.()) throw new MigrationError('MIGRATION_ERR_CANCELLED', 'the migration was cancelled');
  };
  let disks: DiskCopyStream | null = null;
  // The first round's work: all of memory, then every drive (percent complete follows both).
  const firstRoundBytes = () => memory.byteLength + (disks?.diskBytes ?? 0);
  /** Sends what changed in pages [from, to). */
  const scanPages = async (from: number, to: number, precopy: boolean): Promise<number> => {
    let sent = 0;
    for (let at = from; at < to; at += SCAN_STEP) {
      if (precopy) checkCancel();
      sent += tracker.scan(at, Math.min(at + SCAN_STEP, to), batch.add);
      await batch.flush(channel);
      if (precopy && pagesPerRound.length === 0 && (at / SCAN_STEP) % 64 === 0) progress('pre-copy', Math.floor((80 * at * PAGE_BYTES) / firstRoundBytes()));
    }
    return sent;
  };
  /** One pre-copy round: all of memory, then the drives' dirty blocks; returns how many pages went. */
  const round = async (): Promise<number> => {
    const sent = await scanPages(0, tracker.pageCount, true);
    if (disks) {
      const first = pagesPerRound.length === 0;
      let steps = 0;
      await disks.round(channel, (read) => {
        checkCancel();
        if (first && steps++ % 64 === 0) progress('pre-copy', Math.floor((80 * (memory.byteLength + read)) / firstRoundBytes()));
      });
    }
    return sent;
  };

  let bytesPerMs = 0;
  let stopReason = 'round-limit';
  const bytesPerRound: number[] = [];
  try {
    if (o.storage) {
      if (!vm.storageMoveRequest) throw new MigrationError('MIGRATION_ERR_FAILED', 'this VM cannot move its storage');
      disks = await DiskCopyStream.begin(vm as StorageMoveVm, o.storage.dir);
    }
    await channel.send(
      encodeJsonFrame(MigrationFrame.Hello, {
        ...o.hello,
        protocol: MIGRATION_PROTOCOL_VERSION,
        configurationHash: vm.configurationHash().toString('hex'),
        memoryBytes: memory.byteLength,
        ...(disks ? { storage: disks.hello } : {}),
      }),
    );
    // Pre-copy.
    let growing = 0;
    for (;;) {
      const r0 = performance.now();
      const b0 = channel.bytesSent;
      const sent = await round();
      pagesPerRound.push(sent);
      const ms = performance.now() - r0;
      const roundBytes = channel.bytesSent - b0;
      bytesPerRound.push(roundBytes);
      // The rate of a round that moved real data; a nearly idle round says little about the link.
      if (roundBytes >= 1 << 20) bytesPerMs = roundBytes / Math.max(ms, 0.001);
      progress('pre-copy', Math.min(90, 80 + pagesPerRound.length));
      const prev = bytesPerRound.at(-2);
      if (pagesPerRound.length > 1 && (bytesPerMs === 0 || roundBytes / bytesPerMs <= tuning.downtimeTargetMs)) {
        stopReason = 'converged';
        break;
      }
      if (prev !== undefined && roundBytes >= prev * 0.9) growing++;
      else growing = 0;
      if (growing >= 3) {
        stopReason = 'not-converging';
        break;
      }
      if (pagesPerRound.length >= tuning.maxRounds) break;
    }
    // Switch-over.
    checkCancel();
  } catch (e) {
    // The VM never stopped here: it runs on; the destination learns why and drops its copy.
    channel.abort(e instanceof Error ? e.message : String(e));
    await disks?.end();
    throw e;
  }
  const preCopyMs = performance.now() - t0;
  const preCopyBytes = channel.bytesSent;
  progress('switch-over', 92);
  const tPause = performance.now();
  const pausedAtMs = Date.now();
  // The last round runs inside the capture: the memory but the capture area as soon as the VPs
  // are parked and the devices saved (nothing else writes it then), alongside the VPs' capture;
  // the capture area once they are captured (it holds the guest's bytes again); the drives' last
  // blocks before they close. The device thread stops inside the pause only when the destination
  // waits for this VM's disk locks (shared storage); else once the VM runs there.
  const area = captureAreaPages(memory.byteLength, tracker.pageCount);
  let finalPages = 0;
  let finalError: Error | null = null;
  let frozenScan: Promise<void> = Promise.resolve();
  const failed = (e: unknown) => {
    finalError ??= e instanceof Error ? e : new Error(String(e));
  };
  let captured: CapturedVm;
  try {
    captured = await vm.captureForMigration({
      memoryFrozen: () => {
        frozenScan = (async () => {
          finalPages += await scanPages(0, area.first, false);
          finalPages += await scanPages(area.end, tracker.pageCount, false);
        })().catch(failed);
      },
      beforeStopDevices: async () => {
        try {
          await frozenScan;
          finalPages += await scanPages(area.first, area.end, false);
          if (disks) await disks.round(channel);
        } catch (e) {
          failed(e);
        }
      },
      deferStopDevices: o.storage !== undefined || vm.hasDrives === false,
    });
  } catch (e) {
    // The capture failed and put the VM back: it runs on here.
    channel.abort(e instanceof Error ? e.message : String(e));
    await frozenScan;
    await disks?.end();
    throw e;
  }
  const tCaptured = performance.now();
  let tSent = tCaptured;
  let tReady = tCaptured;
  let destination: RestoreTiming | null = null;
  try {
    if (finalError) throw finalError;
    await channel.send(encodeJsonFrame(MigrationFrame.Blackout, { pausedAtMs }));
    pagesPerRound.push(finalPages);
    let records = 0;
    const record = async (r: SavedRecord) => {
      await channel.send(encodeFrame(MigrationFrame.StateRecord, encodeRecord(r)));
      records++;
    };
    const s = captured.state;
    await record({ partition: { vpCount: s.vpCount, guestOsId: s.guestOsId, hypercallMsr: s.hypercallMsr, imagePreparation: s.imagePreparation } });
    for (const vp of s.vps) await record({ vp });
    await record({ referenceTime: { referenceTicks: s.referenceTicks } });
    for (const d of s.devices) await record({ device: d });
    await record({ end: { memoryBytes: memory.byteLength, pageRuns: 0, pagesWritten: 0, recordCount: records } });
    await channel.send(encodeFrame(MigrationFrame.Done));
    tSent = performance.now();
    destination = readyTiming(
      await withTimeout(channel.expect(MigrationFrame.Ready, 'READY'), tuning.replyTimeoutMs, 'the destination did not report the VM restored'),
    );
    tReady = performance.now();
    checkCancel();
  } catch (e) {
    channel.abort(e instanceof Error ? e.message : String(e));
    await vm.resumeAfterMigration(captured, captured.wasRunning);
    throw e instanceof MigrationError
      ? e
      : new MigrationError('MIGRATION_ERR_FAILED', `the migration failed at switch-over (${(e as Error).message}); the VM runs on here`);
  }
  progress('committing', 97);
  try {
    await channel.send(encodeFrame(MigrationFrame.Go));
    await withTimeout(channel.expect(MigrationFrame.Running, 'RUNNING'), tuning.replyTimeoutMs, 'the destination did not report the VM running');
  } catch (e) {
    channel.close();
    await vm.resumeAfterMigration(captured, false);
    throw new MigrationError(
      'MIGRATION_ERR_OUTCOME_UNKNOWN',
      `the source gave the VM up but the destination's answer did not come (${(e as Error).message}); the destination may be running it, so it stays paused here: check the destination before resuming it`,
    );
  }
  const tRunning = performance.now();
  // Left running through the pause when no other host waited for its disk locks: stopped now, outside the downtime.
  await captured.stopDevices();
  progress('completed', 100);
  return {
    rounds: pagesPerRound.length - 1,
    pagesPerRound,
    diskBlocksPerRound: disks?.blocksPerRound ?? [],
    diskBytesSent: disks?.bytesSent ?? 0,
    zeroPagesSent: batch.zeroPages,
    bytesSent: channel.bytesSent,
    totalMs: tRunning - t0,
    preCopyMs,
    downtimeMs: tRunning - tPause,
    captureMs: tCaptured - tPause,
    finalSendMs: tSent - tCaptured,
    restoreMs: tReady - tSent,
    commitMs: tRunning - tReady,
    capture: captured.timing,
    destination,
    preCopyBytesPerSecond: preCopyBytes / (preCopyMs / 1000),
    stopReason,
  };
}

/** The pages of the capture area, which the VPs borrow while they are captured (hypervisor/vp/stack-capture.ts). */
export function captureAreaPages(memoryBytes: number, pageCount: number): { first: number; end: number } {
  const first = Math.min(pageCount, Math.floor(CAPTURE_AREA_GPA / PAGE_BYTES));
  return { first, end: Math.min(pageCount, Math.max(first, Math.ceil((CAPTURE_AREA_GPA + captureAreaSize(memoryBytes)) / PAGE_BYTES))) };
}

/** The restore timing a READY carries, if it carries one (figures only: nothing else is taken from it). */
function readyTiming(f: Frame): RestoreTiming | null {
  if (f.body.length === 0 || f.body.length > 1024) return null;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(f.body.toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  const ms = (k: string) => (typeof v?.[k] === 'number' && Number.isFinite(v[k]) ? (v[k] as number) : 0);
  return {
    prestartWaitMs: ms('prestartWaitMs'),
    continueVpsMs: ms('continueVpsMs'),
    startDevicesMs: ms('startDevicesMs'),
    vpThreadsStartedInPause: ms('vpThreadsStartedInPause'),
    deviceThreadLoadedInPause: v.deviceThreadLoadedInPause === true,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    }),
  ]);
}
