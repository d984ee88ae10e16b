/**
 * A storvsp sub-channel served on a queue thread of its own (storvsp-queue-threads.ts) on a real
 * partition: its ports, its guest memory for the rings, a raw image file, and a real worker
 * thread. The guest's side is played here with the host ring classes and the guest's own
 * hypercall path (PortTable.signalEvent from the child, as HvCallSignalEvent does it), its control
 * messages fed to the VMBus server as they would arrive.
 */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HvStatus } from '../../abi/hv-status.ts';
import type { HvError } from '../../hypervisor/hv-error.ts';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import { hasPendingVector, takeHighestVector } from '../../hypervisor/interrupts.ts';
import { Owner, VP_SCONTROL, VP_SIEFP, VP_SIMP, VP_SINT, vpBase } from '../../hypervisor/partition-control.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import * as C from '../../vmbus/protocol/channel-constants.ts';
import { encodeChannelMessage, encodeGpadl } from '../../vmbus/protocol/channel-encode.ts';
import type { ChannelMessage } from '../../vmbus/protocol/channel-messages.ts';
import { ReceivedPacket, VmbusPacketType, VmbusRing, encodeGpaDirectHeader } from '../../vmbus/ring/index.ts';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import { SwitchableDisk } from '../../root-partition/vmwp/disk-switch.ts';
import { DiskIoError } from '../../root-partition/storage/disk-io-error.ts';
import { ScsiDisk } from '../../root-partition/storage/scsi/scsi-disk.ts';
import { lunsAtLocations } from '../../root-partition/vsp/storvsp/scsi-controller.ts';
import { StorVsp } from '../../root-partition/vsp/storvsp/storvsp-vsp.ts';
import { decodeSrbCompletion, SrbStatus } from '../../root-partition/vsp/storvsp/storvsp-protocol.ts';
import { diskId, initPacket, srbPacket } from '../vsp/storvsp-test-guest.ts';

/** One GPA-direct range over `length` bytes at page-aligned `gpa`. */
const rangeAt = (gpa: number, length: number) => ({
  byteCount: length,
  byteOffset: 0,
  pfns: Array.from({ length: Math.ceil(length / 4096) }, (_, i) => gpa / 4096 + i),
});

const T = C.ChannelMessageType;
const MEMORY = 8 << 20;
const DISK_BYTES = 4 << 20;
const SINT2_VECTOR = 0x30;
/** Guest pages: rings of relid 1 at 0x100, of the sub-channel at 0x200 (8 pages each: 4 + 4), I/O buffers from 0x400. */
const BUFFERS = 0x400 * 4096;
/** VP 1's SIEF page. */
const SIEF_VP1 = 0x300 * 4096;

let dir: string;
let hv: Hypervisor | null = null;
const cleanup: (() => void | Promise<void>)[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-storq-'));
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await hv?.shutdown();
  hv = null;
  fs.rmSync(dir, { recursive: true, force: true });
});

const until = async (what: string, ok: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

/** A guest's view of one open channel: it produces into the host's inbound ring and reads the outbound one. */
function guestRings(p: Partition, firstPfn: number) {
  const out = VmbusRing.create(p.mem, firstPfn * 4096, 3 * 4096) as VmbusRing;
  const inn = VmbusRing.create(p.mem, (firstPfn + 4) * 4096, 3 * 4096) as VmbusRing;
  out.initAsProducer();
  return { out, inn };
}

function readCompletions(ring: VmbusRing): { id: number; payload: Uint8Array }[] {
  const r = ring.reader();
  const pk = new ReceivedPacket(4096);
  const got: { id: number; payload: Uint8Array }[] = [];
  for (let x = r.tryRead(pk); x !== null; x = r.tryRead(pk)) {
    if (x.kind === 'corrupt') throw new Error(x.reason);
    got.push({ id: pk.transIdLo, payload: pk.payload().slice() });
  }
  r.commit();
  return got;
}

async function rig(opts: { onDriveFailure?: (e: Error) => void } = {}) {
  hv = new Hypervisor();
  const p = hv.createPartition({ memoryBytes: MEMORY, vpCount: 2, waitPolicy: { spinIterations: 0 } });
  p.initialize();
  // Each VP's SynIC as its wrmsr of SCONTROL, SIMP, SIEFP and SINT2 leave it.
  for (const vp of [0, 1]) {
    const b = vpBase(vp);
    p.ctl.i32[(b + VP_SCONTROL) >> 2] = 1;
    p.ctl.i64[(b + VP_SIMP) >> 3] = BigInt((0x302 + 2 * vp) * 4096 + 1);
    p.ctl.i64[(b + VP_SIEFP) >> 3] = BigInt(vp === 1 ? SIEF_VP1 | 1 : (0x303 + 2 * vp) * 4096 + 1);
    p.ctl.i64[(b + VP_SINT + 8 * 2) >> 3] = BigInt(SINT2_VECTOR);
  }
  const file = path.join(dir, 'disk.raw');
  const content = randomFillSync(new Uint8Array(DISK_BYTES));
  fs.writeFileSync(file, content);
  const raw = RawDisk.open(file);
  cleanup.push(() => raw.close());
  const errors: HvError[] = [];
  const logs: string[] = [];
  const host = new VmbusHost(p, { log: (e) => errors.push(e) });
  const vsp = new StorVsp({
    instanceId: '5c7c5b3a-8d6e-4a3b-9c1d-2e3f4a5b6c7d',
    // The VM's drive as the device thread has it (its first failure goes to VMMS from there).
    luns: lunsAtLocations([new ScsiDisk(new SwitchableDisk(raw, file, opts.onDriveFailure), { diskId: diskId(1) })]),
    subChannels: host.server,
    maxSubChannels: 1,
    pollSpinMicros: 0,
    subChannelThreads: 'on',
    queueThreadWait: { spinIterations: 2000, maxSpinIterations: 20_000 },
    log: (m) => logs.push(m),
  });
  host.addVsp(vsp);
  cleanup.push(async () => {
    host.dispose();
    await vsp.stopQueueThreads();
  });
  const post = (m: ChannelMessage) => host.server.handleGuestMessage(encodeChannelMessage(m), C.VMBUS_MESSAGE_CONNECTION_ID);
  host.server.handleGuestMessage(
    encodeChannelMessage({
      type: T.InitiateContact,
      version: C.VmbusVersion.Win10V5_3,
      targetVcpu: 0,
      interruptPage: 0n,
      msgSint: 2,
      msgVtl: 0,
      featureFlags: 0,
      monitorPage1: 0n,
      monitorPage2: 0n,
      clientId: null,
    }),
    C.VMBUS_MESSAGE_CONNECTION_ID_4,
  );
  post({ type: T.RequestOffers });
  const open = (relid: number, firstPfn: number, targetVp: number) => {
    for (const m of encodeGpadl(
      relid,
      relid * 0x10,
      Array.from({ length: 8 }, (_, i) => BigInt(firstPfn + i)),
    ))
      host.server.handleGuestMessage(m, C.VMBUS_MESSAGE_CONNECTION_ID);
    post({
      type: T.OpenChannel,
      childRelid: relid,
      openId: relid,
      ringGpadlHandle: relid * 0x10,
      targetVp,
      downstreamRingPageOffset: 4,
      userData: new Uint8Array(120),
    });
    return guestRings(p, firstPfn);
  };
  /** The guest's HvCallSignalEvent on the channel's connection, then whatever the VMBus host's thread has to serve. */
  const signal = (relid: number) => {
    expect(p.ports.signalEvent(Owner.Child, host.channel(relid)!.connectionId, 0)).toBe(HvStatus.Success);
    return p.inbox.pump();
  };
  // The primary on VP 0: vstor initialization, then CREATE_SUB_CHANNELS(1).
  const primary = open(1, 0x100, 0);
  const w = primary.out.writer();
  for (const [op, arg] of [
    [7, 0],
    [9, 0x0602],
    [10, 0],
    [8, 0],
    [13, 1],
  ] as const)
    w.tryWrite({ type: VmbusPacketType.DataInband, flags: 1, transactionId: 0xfffffffffffffffdn, payload: initPacket(op, arg).payload });
  w.commit();
  signal(1);
  for (const c of readCompletions(primary.inn)) expect(new DataView(c.payload.buffer).getUint32(8, true)).toBe(0);
  await until('the sub-channel offer', () => vsp.stats.subChannelsOffered === 1);
  // Sub-channel relid 2, its interrupts to VP 1 (OPENCHANNEL target_vp).
  const sub = open(2, 0x200, 1);
  expect(host.channel(2)?.targetVp).toBe(1);
  await until('the queue thread to take the sub-channel', () => vsp.queueThreads!.isOffloaded(host.channel(2)!));
  // Its first pass (on taking the channel) is over: the ring is unmasked, so the guest's next
  // batch must signal (a batch written while a consumer drains, masked, needs none).
  await until('the first pass', () => (vsp.queueThreads!.counters().passes ?? 0) > 0);
  return { p, host, vsp, raw, content, file, errors, logs, primary, sub, signal };
}

/** `n` READ(10)s of `blocks` 4 KiB blocks each, GPA direct into consecutive buffers, one batch. */
function submitReads(ring: VmbusRing, lbas: number[], firstId = 1): boolean {
  const w = ring.writer();
  lbas.forEach((lba, i) => {
    const cdb = Buffer.alloc(10);
    cdb[0] = 0x28;
    cdb.writeUInt32BE(lba, 2);
    cdb.writeUInt16BE(8, 7);
    const ok = w.tryWrite({
      type: VmbusPacketType.DataUsingGpaDirect,
      flags: 1,
      transactionId: firstId + i,
      header: encodeGpaDirectHeader([rangeAt(BUFFERS + i * 4096, 4096)]),
      payload: srbPacket({ cdb: new Uint8Array(cdb), dataIn: 1, dataTransferLength: 4096 }),
    });
    expect(ok).toBe(true);
  });
  return w.commit();
}

/** WRITE(10) of `bytes` at `lba` from buffer `i` (buffers `bytes` apart). */
function writeOf(lba: number, i: number, firstId: number, bytes = 4096) {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x2a;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(bytes / 512, 7);
  return {
    type: VmbusPacketType.DataUsingGpaDirect,
    flags: 1,
    transactionId: firstId + i,
    header: encodeGpaDirectHeader([rangeAt(BUFFERS + i * bytes, bytes)]),
    payload: srbPacket({ cdb: new Uint8Array(cdb), dataIn: 0, dataTransferLength: bytes }),
  };
}

describe('storvsp sub-channel on a queue thread', () => {
  it('serves I/O on its own thread: the guest signal wakes that thread alone, data intact, the interrupt on the target VP', async () => {
    const r = await rig();
    // What VP 0 took so far (VMBus messages, the primary's replies) is taken, as its guest would.
    while (takeHighestVector(r.p.ctl, 0) >= 0);
    const lbas = Array.from({ length: 24 }, (_, i) => ((i * 37) % 256) * 8);
    expect(submitReads(r.sub.out, lbas)).toBe(true);
    // The VMBus host's thread finds nothing to serve: the signal rang the queue thread's doorbell.
    expect(r.signal(2)).toBe(0);
    let got: { id: number; payload: Uint8Array }[] = [];
    await until('24 completions', () => {
      got = got.concat(readCompletions(r.sub.inn));
      return got.length >= 24;
    });
    expect(got.map((c) => c.id).sort((a, b) => a - b)).toEqual(lbas.map((_, i) => i + 1));
    for (const c of got) expect(decodeSrbCompletion(c.payload)).toMatchObject({ srbStatus: SrbStatus.Success, dataTransferLength: 4096 });
    lbas.forEach((lba, i) => {
      const want = r.content.subarray(lba * 512, lba * 512 + 4096);
      expect(Buffer.from(r.p.mem.u8.subarray(BUFFERS + i * 4096, BUFFERS + i * 4096 + 4096)).equals(Buffer.from(want))).toBe(true);
    });
    // Event flag relid 2 in VP 1's SIEF (SINT2), SINT2's vector pending on VP 1 and not on VP 0.
    // The signal follows the batch's completions (published first): waited for, not raced.
    await until("VP 1's event flag", () => (r.p.mem.u8[SIEF_VP1 + 2 * 256]! & (1 << 2)) !== 0);
    await until("VP 1's interrupt", () => hasPendingVector(r.p.ctl, 1)); // asserted just after the flag
    expect(takeHighestVector(r.p.ctl, 1)).toBe(SINT2_VECTOR);
    expect(hasPendingVector(r.p.ctl, 0)).toBe(false);
    expect(r.p.mem.u8[0x303 * 4096 + 2 * 256] & (1 << 2)).toBe(0);
    // The thread publishes its counters after each pass, just after its last completion.
    await until('the counters', () => r.vsp.statsSnapshot().threadRequests === 24);
    const s = r.vsp.statsSnapshot();
    expect(s.threadRequests).toBe(24);
    expect(s.requests).toBeGreaterThanOrEqual(24);
    expect(r.host.channel(2)!.stats.packetsIn).toBe(0); // the VMBus host's own channel object read nothing
    // Writes go through the same descriptor: on the file at once.
    const w = r.sub.out.writer();
    r.p.mem.u8.fill(0xa5, BUFFERS, BUFFERS + 4096);
    w.tryWrite(writeOf(16, 0, 100));
    if (w.commit()) r.signal(2);
    await until('the write', () => readCompletions(r.sub.inn).length === 1);
    const disk = fs.readFileSync(r.file);
    expect(disk.subarray(16 * 512, 16 * 512 + 4096).every((b) => b === 0xa5)).toBe(true);
    expect(r.errors).toEqual([]);
  });

  it('a save takes the sub-channel back with requests in flight on the thread: every request read has its completion, none is lost', async () => {
    const r = await rig();
    // 24 writes of 128 KiB; once the thread has answered the first, the save (the VPs would be
    // parked: no new request follows), while the thread is in the middle of the others.
    const BYTES = 128 << 10;
    const w = r.sub.out.writer();
    for (let i = 0; i < 24; i++) {
      r.p.mem.u8.fill(i + 1, BUFFERS + i * BYTES, BUFFERS + (i + 1) * BYTES);
      expect(w.tryWrite(writeOf(i * (BYTES / 512), i, 1, BYTES))).toBe(true);
    }
    if (w.commit()) r.signal(2);
    await until('the first completion', () => r.sub.inn.writeIndex() !== r.sub.inn.readIndex(), 20_000);
    const saved = r.host.saveState();
    expect(saved.length).toBeGreaterThan(0);
    expect(r.vsp.queueThreads!.isOffloaded(r.host.channel(2)!)).toBe(false);
    expect(r.vsp.statsSnapshot().threadParks).toBe(1);
    // Whatever the thread read before it parked is answered; the rest is still in the ring (read by the saved VM).
    const answered = readCompletions(r.sub.inn).length;
    const inbound = r.host.channel(2)!.rings.inbound;
    const left = inbound.bytesAvailable(inbound.writeIndex(), inbound.readIndex());
    const per = VmbusRing.packetTotal(encodeGpaDirectHeader([rangeAt(BUFFERS, BYTES)]).length, 64);
    expect(answered * per + left).toBe(24 * per);
    // The save is not used: the VM runs on, the sub-channel goes back to its thread and everything completes.
    r.host.resumeAfterSave();
    await until('the thread again', () => r.vsp.queueThreads!.isOffloaded(r.host.channel(2)!));
    let total = answered;
    await until('every completion', () => {
      total += readCompletions(r.sub.inn).length;
      return total === 24;
    });
    const disk = fs.readFileSync(r.file);
    for (let i = 0; i < 24; i++) expect(disk.subarray(i * BYTES, (i + 1) * BYTES).every((b) => b === i + 1)).toBe(true);
    console.log(`save with writes on the queue thread: ${answered} of 24 answered there before it parked`);
  });

  it('a hostile ring on the thread: a bad GPA range is refused there; a corrupt index resets the sub-channel, the primary serves on', async () => {
    const r = await rig();
    // 100 requests naming a page past guest memory: each refused there, and the log lines the
    // guest causes on that thread are bounded (20 a second, the rest counted).
    const w = r.sub.out.writer();
    for (let i = 0; i < 100; i++) {
      const ok = w.tryWrite({
        type: VmbusPacketType.DataUsingGpaDirect,
        flags: 1,
        transactionId: 9 + i,
        header: encodeGpaDirectHeader([{ byteCount: 4096, byteOffset: 0, pfns: [MEMORY / 4096 + i] }]),
        payload: srbPacket({ cdb: '28000000000000000800', dataIn: 1, dataTransferLength: 4096 }),
      });
      expect(ok).toBe(true);
    }
    const t0 = performance.now();
    if (w.commit()) r.signal(2);
    let got: { id: number; payload: Uint8Array }[] = [];
    await until('the refusals', () => (got = got.concat(readCompletions(r.sub.inn))).length === 100);
    // The limit is per second of the thread's clock: a pass a loaded host stretches over more seconds gets a burst in each.
    const seconds = Math.ceil((performance.now() - t0) / 1000);
    for (const c of got) expect(decodeSrbCompletion(c.payload).srbStatus).toBe(SrbStatus.InvalidRequest);
    await until('the counters', () => r.vsp.statsSnapshot().badGpaRanges === 100);
    expect(r.vsp.statsSnapshot()).toMatchObject({ badGpaRanges: 100, backendUs: 0 }); // no disk access
    await until('the log lines', () => r.logs.length >= 20);
    await new Promise((res) => setTimeout(res, 50));
    expect(r.logs.length).toBeLessThanOrEqual(20 * (seconds + 1)); // a burst per second begun (40 when the pass took < 1 s)
    expect(r.logs.every((l) => l.includes('GPA-direct request refused'))).toBe(true);
    // The guest writes a write_index that is not 8-byte aligned, and signals.
    Atomics.store(r.p.mem.i32, r.sub.out.writeIndexWord, 13);
    r.signal(2);
    await until('the reset', () => r.host.stats.channelResets === 1);
    expect(r.errors.map((e) => e.code)).toContain('VMBUS_CHANNEL_RESET');
    expect(r.vsp.statsSnapshot().threadsLost).toBe(1);
    // The primary still serves I/O (on the VMBus host's thread).
    expect(submitReads(r.primary.out, [8])).toBe(true);
    r.signal(1);
    const c = readCompletions(r.primary.inn);
    expect(c.map((x) => decodeSrbCompletion(x.payload).srbStatus)).toEqual([SrbStatus.Success]);
  });

  it('an I/O error on the thread reaches the guest and the drive (its first failure, once); the sub-channel goes back to the device thread', async () => {
    const failures: Error[] = [];
    const r = await rig({ onDriveFailure: (e) => failures.push(e) });
    // The image shrinks under the VM: a read past its new end fails in the thread's pread.
    fs.truncateSync(r.file, 1 << 20);
    expect(submitReads(r.sub.out, [(2 << 20) / 512])).toBe(true);
    r.signal(2);
    let got: { id: number; payload: Uint8Array }[] = [];
    await until('the failed read', () => (got = readCompletions(r.sub.inn)).length === 1);
    const c = decodeSrbCompletion(got[0]!.payload);
    expect(c.srbStatus & 0x3f).toBe(SrbStatus.Error);
    expect(c.sense[2]! & 0x0f).toBe(3); // MEDIUM ERROR
    await until('the drive to take the failure', () => failures.length === 1);
    expect(failures[0]).toBeInstanceOf(DiskIoError);
    expect((failures[0] as DiskIoError).operation).toBe('read');
    await until('the sub-channel back on the device thread', () => !r.vsp.queueThreads!.isOffloaded(r.host.channel(2)!));
    expect(r.vsp.statsSnapshot().threadsLost).toBe(1);
    // The next request on the sub-channel is the device thread's, and it is not handed over again.
    expect(submitReads(r.sub.out, [8], 50)).toBe(true);
    r.signal(2);
    const next = readCompletions(r.sub.inn);
    expect(next.map((x) => decodeSrbCompletion(x.payload).srbStatus)).toEqual([SrbStatus.Success]);
    expect(r.host.channel(2)!.stats.packetsIn).toBe(1);
    await new Promise((res) => setTimeout(res, 20));
    expect(r.vsp.queueThreads!.isOffloaded(r.host.channel(2)!)).toBe(false);
    expect(failures).toHaveLength(1);
  });

  it('teardown joins the thread: closing VMBus parks it, stopping ends it', async () => {
    const r = await rig();
    const threads = r.vsp.queueThreads!;
    await until('the first pass', () => (threads.counters().passes ?? 0) > 0);
    r.host.dispose(); // closes every channel: the sub-channel comes back and its thread is told to end
    await r.vsp.stopQueueThreads();
    expect(threads.liveThreads).toBe(0);
    expect(threads.stats.threadsStarted).toBe(1);
  });
});
