/**
 * A storage move (shared-nothing live migration) between two VM workers in this process over a
 * real socket: the disk-writer guest rewrites its VHDX drive generation after generation while
 * the drive is copied into another directory, round after round with the writes tracked, the last
 * ones sent while the VM is paused. After the move the guest goes on writing on the destination;
 * when it is done, the destination's file holds exactly what the guest wrote (the guest's own
 * FNV-1a of its region against the file's), the data the guest never touched came across too, and
 * the guest's read-back of every generation stayed right on both sides. A move whose connection
 * drops during the copy leaves the guest writing on at the source, its drive no longer tracked.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestImagePath, buildGuests } from '../../scripts/build-guests.ts';
import { closeLogger, createProcessLogger, type Logger } from '../../root-partition/host/log.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import { createVhdx } from '../../root-partition/storage/vhdx/vhdx-create.ts';
import { VmWorker, type WorkerLaunch } from '../../root-partition/vmwp/vm-worker.ts';
import { MigrationChannel } from '../../root-partition/migration/migration-channel.ts';
import { migrateOut } from '../../root-partition/migration/migration-source.ts';
import { commitMigration, receiveMigration, reportRunning } from '../../root-partition/migration/migration-destination.ts';
import { DiskCopyTarget } from '../../root-partition/migration/disk-copy-target.ts';
import { createDiskCopy, movedDiskPath } from '../../root-partition/migration/storage-move-destination.ts';
import { MiB, waitFor } from '../vmms/vmms-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-smove-'));
let image: string;
let log: Logger;
beforeAll(async () => {
  await buildGuests(['disk-writer']);
  image = guestImagePath('disk-writer');
  log = createProcessLogger({ dataDir: dir, process: 'smove', terminal: false });
});
afterAll(async () => {
  await closeLogger(log);
  rmSync(dir, { recursive: true, force: true });
});

async function socketPair(): Promise<[Socket, Socket]> {
  const path = join(dir, 'm.sock');
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const a = connect(path);
  const b = await accepted;
  server.close();
  return [a, b];
}

function fnv(bytes: Uint8Array): number {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

function readDisk(path: string, offset: number, length: number): Buffer {
  const d = openDisk(path, { readOnly: true });
  try {
    const out = Buffer.alloc(length);
    d.read(offset / 512, out);
    return out;
  } finally {
    d.close();
  }
}

describe('storage move', () => {
  it("a guest rewriting its VHDX drive during the move: the destination's copy holds exactly what it wrote", { timeout: 90_000 }, async () => {
    const BLOCKS = 64; // the guest's region: 256 KiB of 4 KiB blocks
    const [srcDir, dstDir] = [join(dir, 'a'), join(dir, 'b')];
    for (const d of [srcDir, dstDir]) mkdirSync(d);
    const srcDisk = join(srcDir, 'data.vhdx');
    createVhdx(srcDisk, { type: 'dynamic', sizeBytes: 8 * MiB, blockSizeBytes: MiB });
    // Data the guest never touches, past its region: the first round must carry it.
    const untouched = Buffer.alloc(192 * 1024);
    for (let i = 0; i < untouched.length; i++) untouched[i] = (i * 7 + (i >> 12)) & 0xff;
    const w = openDisk(srcDisk);
    w.write((5 * MiB) / 512, untouched);
    w.close();
    // The copy as the destination's VMMS makes it (storage-move-destination.ts).
    const dstDisk = movedDiskPath(dstDir, srcDisk);
    createDiskCopy({ path: srcDisk, format: 'vhdx', sectorSize: 512, sectorCount: (8 * MiB) / 512, readOnly: false, virtualDiskId: null }, dstDisk);

    const launch = (disk: string): WorkerLaunch => ({
      dataDir: dir,
      vmId: '00000000-0000-4000-8000-0000000000e7',
      name: 'smove',
      memoryBytes: 16 * MiB,
      vpCount: 1,
      imagePath: image,
      cmdline: `blocks=${BLOCKS} gens=60 mode=dma`,
      devices: { ide: [{ path: disk }] },
    });
    let text = '';
    let srcText = '';
    const src = new VmWorker(launch(srcDisk), log);
    const dst = new VmWorker(launch(dstDisk), log);
    for (const v of [src, dst])
      v.on('console', (b: Uint8Array) => {
        const s = Buffer.from(b).toString('latin1');
        text += s;
        if (v === src) srcText += s;
      });
    const generations = () => srcText.match(/dgen=\d+ ok/g)?.length ?? 0;
    const [a, b] = await socketPair();
    const out = new MigrationChannel(a);
    const into = new MigrationChannel(b);
    try {
      await src.boot();
      await waitFor('a first generation', () => /dgen=1 ok/.test(text), 30_000);
      const arrived = dst.bootFromMigration(
        (m, h) => receiveMigration(into, m, h, new DiskCopyTarget(dst.launch.devices, undefined)),
        (t) => commitMigration(into, t, 10_000),
        () => reportRunning(into),
      );
      // A slow link: after the first round the source sends nothing until the guest has reported
      // two more generations, so one of them was written wholly after that round and a later round
      // must carry it (on a loaded host the guest could otherwise get no time during the move).
      let gate: Promise<unknown> | null = null;
      const send = out.send.bind(out);
      out.send = async (frame) => {
        if (gate) await gate;
        return send(frame);
      };
      const summary = await migrateOut(src, out, {
        hello: {},
        storage: { dir: dstDir },
        tuning: { replyTimeoutMs: 10_000 },
        onProgress: (p) => {
          if (p.phase !== 'pre-copy' || p.round !== 1 || gate) return;
          const n = generations();
          gate = waitFor('two generations after the first round', () => generations() >= n + 2, 30_000);
        },
      });
      await arrived;
      // The guest wrote through the whole move: it had not finished when the destination took over.
      expect(text).not.toMatch(/disk-writer: done/);
      await src.turnOff();
      // The first round carried the written region and the untouched data (and skipped the zeros);
      // later rounds re-sent what the guest wrote meanwhile, the paused one what it wrote last.
      expect(summary.diskBlocksPerRound[0]).toBeGreaterThanOrEqual(4 + 3);
      expect(summary.diskBlocksPerRound[0]).toBeLessThan(128);
      expect(summary.diskBlocksPerRound.length).toBe(summary.pagesPerRound.length);
      expect(summary.diskBlocksPerRound.slice(1).some((n) => n > 0)).toBe(true);

      const done = await waitFor('the guest to finish on the destination', () => /disk-writer: done gens=60 fnv=(\d+)/.exec(text), 60_000);
      expect(text).not.toMatch(/MISMATCH|failed/);
      await dst.turnOff();
      expect(fnv(readDisk(dstDisk, 0, BLOCKS * 4096))).toBe(Number(done[1]));
      expect(readDisk(dstDisk, 5 * MiB, untouched.length).equals(untouched)).toBe(true);
      // What lies between reads zero, as it did on the source.
      expect(readDisk(dstDisk, BLOCKS * 4096, 5 * MiB - BLOCKS * 4096).every((x) => x === 0)).toBe(true);
    } finally {
      out.close();
      into.close();
      await src.turnOff();
      await dst.turnOff();
    }
  });

  it('the connection drops during the copy: the source runs on its own drive, untracked; the destination lets its copy go', { timeout: 60_000 }, async () => {
    const [srcDir, dstDir] = [join(dir, 'c'), join(dir, 'd')];
    for (const d of [srcDir, dstDir]) mkdirSync(d);
    const srcDisk = join(srcDir, 'drop.raw');
    RawDisk.create(srcDisk, { sizeBytes: 8 * MiB }).close();
    const dstDisk = movedDiskPath(dstDir, srcDisk);
    createDiskCopy({ path: srcDisk, format: 'raw', sectorSize: 512, sectorCount: (8 * MiB) / 512, readOnly: false, virtualDiskId: null }, dstDisk);
    const launch = (disk: string): WorkerLaunch => ({
      dataDir: dir,
      vmId: '00000000-0000-4000-8000-0000000000e8',
      name: 'smove-drop',
      memoryBytes: 16 * MiB,
      vpCount: 1,
      imagePath: image,
      cmdline: 'blocks=64 gens=100000 mode=dma',
      devices: { ide: [{ path: disk }] },
    });
    let text = '';
    const src = new VmWorker(launch(srcDisk), log);
    const dst = new VmWorker(launch(dstDisk), log);
    for (const v of [src, dst])
      v.on('console', (b: Uint8Array) => {
        text += Buffer.from(b).toString('latin1');
      });
    const [a, b] = await socketPair();
    const out = new MigrationChannel(a);
    const into = new MigrationChannel(b);
    try {
      await src.boot();
      await waitFor('a first generation', () => /dgen=1 ok/.test(text), 30_000);
      const arrived = dst
        .bootFromMigration(
          (m, h) => receiveMigration(into, m, h, new DiskCopyTarget(dst.launch.devices, undefined)),
          (t) => commitMigration(into, t, 10_000),
          () => reportRunning(into),
        )
        .then(
          () => 'running',
          (e: Error) => e.message,
        );
      let steps = 0;
      const moved = migrateOut(src, out, {
        hello: {},
        storage: { dir: dstDir },
        onProgress: () => {
          if (++steps === 3) into.socket.destroy();
        },
      });
      await expect(moved).rejects.toThrow(/connection/);
      expect(await arrived).toMatch(/connection/);
      expect(src.state).toBe('running');
      // The drive is no longer tracked; the destination's copy is closed (its lock gone).
      await expect(src.storageMoveRequest({ op: 'move-storage-take', disk: 0, from: 0, maxBytes: MiB, skipZero: false })).rejects.toThrow(/no storage move/);
      openDisk(dstDisk).close();
      const before = Number([...text.matchAll(/dgen=(\d+) ok/g)].at(-1)![1]);
      await waitFor('the guest to write on at the source', () => Number([...text.matchAll(/dgen=(\d+) ok/g)].at(-1)![1]) >= before + 2, 30_000);
      expect(text).not.toMatch(/MISMATCH|failed/);
    } finally {
      out.close();
      into.close();
      await src.turnOff();
      await dst.turnOff();
    }
  });
});
