/**
 * storvsp with requests in flight: reads, writes and flushes that the disk runs queued complete in
 * whatever order the thread pool finishes them, and the data, the flush ordering, the errors and
 * the per-channel bound hold whatever that order is. The file is real; the pool's reordering is
 * made deterministic by DeferredIo (the real calls, made when the test completes them).
 */
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { RawDisk, hostIo, type RawDiskIo } from '../../root-partition/storage/raw-disk.ts';
import type { BlockBackend } from '../../root-partition/storage/block-backend.ts';
import { DiskIoError } from '../../root-partition/storage/disk-io-error.ts';
import { ScsiDisk } from '../../root-partition/storage/scsi/scsi-disk.ts';
import { QUEUED, StorVspChannel, type StorVspOutgoing } from '../../root-partition/vsp/storvsp/storvsp-channel.ts';
import { StorVsp, defaultQueueMinBytes } from '../../root-partition/vsp/storvsp/storvsp-vsp.ts';
import { decodeSrbCompletion, SrbStatus } from '../../root-partition/vsp/storvsp/storvsp-protocol.ts';
import { SwitchableDisk } from '../../root-partition/vmwp/disk-switch.ts';
import { gpaRangesBuffer, type GpaRangeLike } from '../../vmbus/host/gpa-direct.ts';
import { VmbusPacketType } from '../../vmbus/ring/index.ts';
import type { VspChannel } from '../../vmbus/host/vsp-channel.ts';
import { DeferredIo } from '../helpers/deferred-io.ts';
import { diskId, initPacket, negotiate, packet, rangeAt, srbPacket } from './storvsp-test-guest.ts';

const SECTORS = 64;
const SLOT = 0x10000; // guest buffer of request i at SLOT + i × 4 KiB
const dirs: string[] = [];
const disks: BlockBackend[] = [];
afterEach(() => {
  for (const d of disks.splice(0)) d.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function imageFile(bytes: Uint8Array): string {
  // Memory-backed where the host has it: the property test makes hundreds of real fdatasyncs.
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'storvsp-queued-'));
  dirs.push(dir);
  const file = path.join(dir, 'disk.raw');
  fs.writeFileSync(file, bytes);
  return file;
}

function rig(io: RawDiskIo, wrap?: (raw: RawDisk) => BlockBackend) {
  const file = imageFile(new Uint8Array(SECTORS * 512));
  const raw = RawDisk.open(file, { io });
  const backend = wrap ? wrap(raw) : raw;
  disks.push(backend);
  const memory = new GuestMemory(1 << 20);
  const channel = new StorVspChannel({
    memory,
    luns: [{ pathId: 0, targetId: 0, lun: 0, disk: new ScsiDisk(backend, { diskId: diskId(1) }) }],
    minQueuedBytes: 0,
  });
  negotiate(channel);
  const done: StorVspOutgoing[] = [];
  /** Submits one SRB; its completion lands in `done` now or later. */
  const submit = (cdb: string, id: bigint, dataIn: number, bytes: number, slot: number): boolean => {
    const p = packet(srbPacket({ cdb, dataIn, dataTransferLength: bytes }), id, bytes > 0 ? [rangeAt(SLOT + slot * 4096, bytes)] : undefined);
    const r = channel.handleQueued(p, (out) => done.push(out));
    if (r === QUEUED) return true;
    done.push({ ...r!, payload: r!.payload.slice() });
    return false;
  };
  return { file, raw, backend, memory, channel, done, submit };
}

const hex = (n: number, bytes: number) => n.toString(16).padStart(bytes * 2, '0');
const read10 = (lba: number, blocks: number) => `28 00 ${hex(lba, 4)} 00 ${hex(blocks, 2)} 00`.replace(/ /g, '');
const write10 = (lba: number, blocks: number, fua = false) => `2a ${fua ? '08' : '00'} ${hex(lba, 4)} 00 ${hex(blocks, 2)} 00`.replace(/ /g, '');
const SYNC_CACHE = '35000000000000000000';
const READ = 1;
const WRITE = 0;
const NONE = 2;
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('storvsp requests in flight', () => {
  it('mixed reads, writes and flushes at QD32 complete in any order with the data a serial disk would give; a flush waits for every write before it', async () => {
    type Op = { kind: 'read' | 'write' | 'flush'; lba: number; blocks: number; fua: boolean };
    const op = fc.record({
      kind: fc.constantFrom<'read' | 'write' | 'flush'>('read', 'write', 'write', 'flush'),
      lba: fc.integer({ min: 0, max: SECTORS - 1 }),
      blocks: fc.integer({ min: 1, max: 8 }),
      fua: fc.boolean(),
    });
    const io = new DeferredIo();
    const r = rig(io);
    // Every flush checks, when it completes, that the fdatasync behind it started after every
    // write started before the flush had completed its pwrite.
    const flushAsync = r.raw.flushAsync.bind(r.raw);
    r.raw.flushAsync = (d) => {
      const writes = io.held.filter((h) => h.op === 'pwrite');
      flushAsync((err) => {
        const sync = io.current;
        expect(sync?.op).toBe('fdatasync');
        for (const w of writes) expect(w.completedAt).toBeGreaterThan(0), expect(w.completedAt).toBeLessThan(sync!.issuedAt);
        d(err);
      });
    };
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(op, { minLength: 1, maxLength: 32 }), { minLength: 1, maxLength: 3 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 64 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
        async (rounds, picks, shorts) => {
          // One image for every run (opening one takes its lock, a process): zeroed first.
          r.raw.write(0, new Uint8Array(SECTORS * 512));
          r.done.length = 0;
          io.held.length = 0;
          const model = new Uint8Array(SECTORS * 512);
          let id = 0n;
          let step = 0;
          for (const [round, ops] of rounds.entries()) {
            // Requests in flight together have no order between them (SCSI simple tags): the writes
            // of a round are disjoint and its reads touch none of them, so one outcome is right.
            const written = new Set<number>();
            const read = new Set<number>();
            const issued: { op: Op; id: bigint; slot: number; bytes: number }[] = [];
            const r0 = r.done.length;
            for (const o of ops) {
              const blocks = Math.min(o.blocks, SECTORS - o.lba);
              const sectors = Array.from({ length: blocks }, (_, i) => o.lba + i);
              const slot = issued.length;
              const tid = ++id;
              if (o.kind === 'write') {
                if (sectors.some((s) => written.has(s) || read.has(s))) continue;
                for (const s of sectors) written.add(s);
                const data = r.memory.u8.subarray(SLOT + slot * 4096, SLOT + slot * 4096 + blocks * 512);
                for (let i = 0; i < data.length; i++) data[i] = (round * 71 + slot * 13 + i * 7) & 0xff;
                model.set(data, o.lba * 512);
                r.submit(write10(o.lba, blocks, o.fua), tid, WRITE, blocks * 512, slot);
              } else if (o.kind === 'read') {
                if (sectors.some((s) => written.has(s))) continue;
                for (const s of sectors) read.add(s);
                r.memory.u8.fill(0xee, SLOT + slot * 4096, SLOT + slot * 4096 + blocks * 512);
                r.submit(read10(o.lba, blocks), tid, READ, blocks * 512, slot);
              } else r.submit(SYNC_CACHE, tid, NONE, 0, slot);
              issued.push({ op: { ...o, blocks }, id: tid, slot, bytes: o.kind === 'flush' ? 0 : blocks * 512 });
            }
            const modelAtRead = model.slice();
            // Complete the held calls in the order the picks say, some of them short (the disk continues them).
            await settle();
            while (io.held.length > 0) {
              const s = step++;
              const i = picks[s % picks.length]! % io.held.length;
              // Short reads only: a write is then one pwrite, which the flush check above follows.
              io.complete(i, io.held[i]!.op === 'pread' && shorts[s % shorts.length]!);
              await settle();
            }
            const got = r.done.slice(r0);
            expect(got.map((c) => c.transactionId).sort((a, b) => Number(a - b))).toEqual(issued.map((x) => x.id));
            for (const x of issued) {
              const c = decodeSrbCompletion(got.find((g) => g.transactionId === x.id)!.payload);
              expect([c.srbStatus, c.dataTransferLength]).toEqual([SrbStatus.Success, x.bytes]);
              if (x.op.kind === 'read') {
                const at = SLOT + x.slot * 4096;
                expect(
                  Buffer.from(r.memory.u8.subarray(at, at + x.bytes)).equals(Buffer.from(modelAtRead.subarray(x.op.lba * 512, x.op.lba * 512 + x.bytes))),
                ).toBe(true);
              }
              if (x.op.kind === 'flush') {
                // Completed after every write issued before it.
                const pos = got.findIndex((g) => g.transactionId === x.id);
                for (const w of issued) if (w.op.kind === 'write' && w.id < x.id) expect(got.findIndex((g) => g.transactionId === w.id)).toBeLessThan(pos);
              }
            }
          }
          expect(r.raw.inFlight).toBe(0);
          expect(Buffer.from(fs.readFileSync(r.file)).equals(Buffer.from(model))).toBe(true);
        },
      ),
      { numRuns: Number(process.env.STORVSP_QUEUED_RUNS ?? 40) },
    );
  });

  it("libuv's pool: 32 writes then 32 reads in flight at once move every byte", async () => {
    const r = rig(hostIo);
    for (let i = 0; i < 32; i++) r.memory.u8.fill(i + 1, SLOT + i * 4096, SLOT + i * 4096 + 1024);
    for (let i = 0; i < 32; i++) expect(r.submit(write10(i * 2, 2), BigInt(i + 1), WRITE, 1024, i)).toBe(true);
    expect(r.submit(SYNC_CACHE, 100n, NONE, 0, 0)).toBe(true);
    while (r.done.length < 33) await settle();
    r.memory.u8.fill(0, SLOT, SLOT + 32 * 4096);
    for (let i = 0; i < 32; i++) r.submit(read10(62 - i * 2, 2), BigInt(200 + i), READ, 1024, i);
    while (r.done.length < 65) await settle();
    expect(r.done.every((c) => decodeSrbCompletion(c.payload).srbStatus === SrbStatus.Success)).toBe(true);
    // The flush after all 32 writes completed after each of them.
    const flushAt = r.done.findIndex((c) => c.transactionId === 100n);
    expect(r.done.slice(0, flushAt).filter((c) => c.transactionId <= 32n)).toHaveLength(32);
    for (let i = 0; i < 32; i++) expect(r.memory.u8[SLOT + i * 4096 + 1023]).toBe(32 - i);
    expect(r.raw.stats.queued).toBe(65);
  });

  it('a failed write reaches the guest as MEDIUM ERROR while the others complete; a failed flush stays failed (sticky) and makes the drive unhealthy once', async () => {
    const io = new DeferredIo();
    const failures: Error[] = [];
    const r = rig(io, (raw) => new SwitchableDisk(raw, 'disk.raw', (e) => failures.push(e)));
    r.submit(write10(0, 8), 1n, WRITE, 4096, 0);
    r.submit(write10(8, 8), 2n, WRITE, 4096, 1);
    r.submit(read10(16, 8), 3n, READ, 4096, 2);
    r.submit(SYNC_CACHE, 4n, NONE, 0, 3);
    await settle();
    expect(io.held.map((h) => h.op)).toEqual(['pwrite', 'pwrite', 'pread']);
    io.held.splice(1, 1)[0]!.fail('EIO'); // the second write
    io.complete(1); // the read
    io.complete(0); // the first write: now the flush may start
    await settle();
    expect(io.held.map((h) => h.op)).toEqual(['fdatasync']);
    io.held.shift()!.fail('EIO');
    await settle();
    r.submit(SYNC_CACHE, 5n, NONE, 0, 4); // fails at once: the first error is kept
    r.submit(read10(0, 8), 6n, READ, 4096, 5);
    await settle();
    io.complete(0);
    await settle();
    const status = (id: bigint) => decodeSrbCompletion(r.done.find((c) => c.transactionId === id)!.payload);
    expect(r.done.map((c) => c.transactionId)).toEqual([2n, 3n, 1n, 4n, 5n, 6n]);
    const failed = status(2n);
    expect(failed.srbStatus).toBe(SrbStatus.Error | 0x80);
    expect([failed.sense[2]! & 0x0f, failed.sense[12], failed.sense[13]]).toEqual([0x03, 0x0c, 0x00]); // MEDIUM ERROR, WRITE ERROR
    expect([status(1n).srbStatus, status(3n).srbStatus, status(6n).srbStatus]).toEqual([SrbStatus.Success, SrbStatus.Success, SrbStatus.Success]);
    expect(status(4n).srbStatus).toBe(SrbStatus.Error | 0x80);
    expect(status(5n).srbStatus).toBe(SrbStatus.Error | 0x80);
    expect(io.held).toHaveLength(0); // the sticky flush made no system call
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(DiskIoError);
  });

  it('a drive is not switched with requests in flight, and its image is closed only after the last one', async () => {
    const io = new DeferredIo();
    const r = rig(io, (raw) => new SwitchableDisk(raw, 'disk.raw'));
    r.submit(read10(0, 8), 1n, READ, 4096, 0);
    const sw = r.backend as SwitchableDisk;
    expect(sw.inFlight).toBe(1);
    expect(() => sw.switchTo('other.raw', () => r.raw)).toThrow(/in flight/);
    sw.close();
    expect(r.raw.isOpen).toBe(false);
    io.complete(0); // the descriptor is still valid for it
    await settle();
    expect(decodeSrbCompletion(r.done[0]!.payload).srbStatus).toBe(SrbStatus.Success);
    expect(sw.inFlight).toBe(0);
  });

  it('by default only a host with cores to spare queues, and then only transfers of 64 KiB or more', () => {
    expect([defaultQueueMinBytes(1), defaultQueueMinBytes(2), defaultQueueMinBytes(3)]).toEqual([Infinity, Infinity, Infinity]);
    expect([defaultQueueMinBytes(4), defaultQueueMinBytes(64)]).toEqual([65536, 65536]);
  });

  it('transfers below minQueuedBytes complete synchronously (QD1 small I/O keeps the direct path)', () => {
    const io = new DeferredIo();
    const file = imageFile(new Uint8Array(SECTORS * 512));
    const raw = RawDisk.open(file, { io });
    disks.push(raw);
    const memory = new GuestMemory(1 << 20);
    const channel = new StorVspChannel({
      memory,
      luns: [{ pathId: 0, targetId: 0, lun: 0, disk: new ScsiDisk(raw, { diskId: diskId(1) }) }],
      minQueuedBytes: 8192,
    });
    negotiate(channel);
    const small = channel.handleQueued(packet(srbPacket({ cdb: read10(0, 8), dataIn: READ, dataTransferLength: 4096 }), 1n, [rangeAt(SLOT, 4096)]), () => {});
    expect(small).not.toBe(QUEUED);
    const big = channel.handleQueued(packet(srbPacket({ cdb: read10(0, 16), dataIn: READ, dataTransferLength: 8192 }), 2n, [rangeAt(SLOT, 8192)]), () => {});
    expect(big).toBe(QUEUED);
    expect(io.held).toHaveLength(1);
    io.complete(0);
  });
});

/** The VMBus side of one channel as StorVsp uses it, recording what it sends (the rings are the framework's, tested in vmbus/). */
function fakeChannel(mem: GuestMemory) {
  const sent: { lo: number; payload: Uint8Array }[] = [];
  const ranges = new Map<number, GpaRangeLike[]>();
  let drains = 0;
  const channel = {
    relid: 1,
    subChannelIndex: 0,
    primaryRelid: 1,
    mem,
    context: undefined,
    state: 'open',
    held: false,
    isDraining: false,
    stats: { signalUs: 0 },
    gpaDirect: (p: { transIdLo: number }) => gpaRangesBuffer(mem, ranges.get(p.transIdLo) ?? []),
    complete: (p: { transIdLo: number }, payload: Uint8Array) => sent.push({ lo: p.transIdLo, payload: payload.slice() }),
    sendInband: () => true,
    send: (_t: number, _f: number, lo: number, _hi: number, _h: null, payload: Uint8Array) => sent.push({ lo, payload: payload.slice() }) > 0,
    sendBatched: (write: () => void) => write(),
    drain: () => drains++,
  } as unknown as VspChannel;
  return { channel, sent, ranges, drains: () => drains };
}

/** A batch of packets as the framework hands them over (each a private copy). */
function batchOf(items: { id: number; payload: Uint8Array; gpa: boolean }[]) {
  let i = 0;
  return {
    taken: () => i,
    batch: {
      next: () => {
        const it = items[i++];
        if (!it) return null;
        return {
          type: it.gpa ? VmbusPacketType.DataUsingGpaDirect : VmbusPacketType.DataInband,
          flags: 1,
          transactionId: BigInt(it.id),
          transIdLo: it.id,
          transIdHi: 0,
          bytes: it.payload,
          payloadOffset: 0,
          payloadLength: it.payload.length,
        };
      },
    } as never,
  };
}

describe('StorVsp with requests in flight', () => {
  function served(maxQueuedPerChannel?: number) {
    const io = new DeferredIo();
    const file = imageFile(new Uint8Array(SECTORS * 512).fill(0x5a));
    const raw = RawDisk.open(file, { io });
    disks.push(raw);
    const mem = new GuestMemory(1 << 20);
    const vsp = new StorVsp({
      instanceId: 'b3c1e7a0-10b5-4e55-9a1e-000000000b11',
      luns: [{ pathId: 0, targetId: 0, lun: 0, disk: new ScsiDisk(raw, { diskId: diskId(1) }) }],
      queueMinBytes: 0,
      maxQueuedPerChannel,
      pollSpinMicros: 0,
    });
    const f = fakeChannel(mem);
    vsp.onOpen(f.channel);
    const init = [7, 9, 10, 8].map((op, i) => ({ id: 1000 + i, payload: initPacket(op, op === 9 ? 0x0602 : 0).payload, gpa: false }));
    vsp.onPackets(f.channel, batchOf(init).batch);
    f.sent.length = 0;
    const reads = (n: number) =>
      Array.from({ length: n }, (_, k) => {
        f.ranges.set(k + 1, [rangeAt(SLOT + k * 4096, 4096)]);
        return { id: k + 1, payload: srbPacket({ cdb: read10(k, 8), dataIn: READ, dataTransferLength: 4096 }), gpa: true };
      });
    return { io, vsp, f, mem, reads };
  }

  it('a save waits for the requests in flight: saveChannel refuses while any is, whenIdle resolves once every completion is written', async () => {
    const s = served();
    s.vsp.onPackets(s.f.channel, batchOf(s.reads(3)).batch);
    expect(s.vsp.inFlight).toBe(3);
    expect(() => s.vsp.saveChannel(s.f.channel)).toThrow(/3 requests still in flight/);
    let idle = false;
    const waiting = s.vsp.whenIdle().then(() => (idle = true));
    s.io.complete(2);
    s.io.complete(0);
    await settle();
    expect(idle).toBe(false);
    expect(s.f.sent.map((x) => x.lo)).toEqual([3, 1]); // out of order, as completed
    s.io.complete(0);
    await waiting;
    expect(s.f.sent.map((x) => x.lo)).toEqual([3, 1, 2]);
    expect(s.mem.u8[SLOT + 2 * 4096 + 4095]).toBe(0x5a);
    expect(s.vsp.saveChannel(s.f.channel).length).toBeGreaterThan(0);
  });

  it('a guest flooding the ring gets at most maxQueuedPerChannel requests held; the rest stay in the ring until completions free room', async () => {
    const s = served(4);
    const b = batchOf(s.reads(40));
    s.vsp.onPackets(s.f.channel, b.batch);
    expect(b.taken()).toBe(4);
    expect(s.vsp.inFlight).toBe(4);
    expect(s.vsp.stats.inFlightStalls).toBe(1);
    expect(s.io.held).toHaveLength(4);
    s.io.complete(0);
    await settle();
    expect(s.f.drains()).toBe(1); // a completion re-reads the ring
    expect(s.f.sent).toHaveLength(1);
    while (s.io.held.length > 0) s.io.complete(0);
    await s.vsp.whenIdle();
  });
});
