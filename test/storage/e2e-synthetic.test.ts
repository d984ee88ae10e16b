import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HvError } from '../../hypervisor/hv-error.ts';
import type { VpCounterName } from '../../hypervisor/partition-control.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import type { BlockBackend } from '../../root-partition/storage/block-backend.ts';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import { ScsiDisk } from '../../root-partition/storage/scsi/scsi-disk.ts';
import { lunsAtLocations } from '../../root-partition/vsp/storvsp/scsi-controller.ts';
import { StorVsp, type StorVspConfig } from '../../root-partition/vsp/storvsp/storvsp-vsp.ts';
import { VmstorProtocolVersion } from '../../root-partition/vsp/storvsp/storvsp-protocol.ts';
import { bootTestGuest, type TestGuest } from '../helpers/guest-partition.ts';

// What the guest (child-sdk/guests/storage-synthetic) does, replayed here from the host file.
const DISK_BYTES = 8 << 20;
const PATTERN_LBA = 8;
const PATTERN_BYTES = 256 * 512;
const RANDOM_READS = 1024;
const RANDOM_SEED = 12345;

function fnv(bytes: Uint8Array, h = 2166136261): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 16777619) >>> 0;
  return h >>> 0;
}
function pattern(disk: number): Uint8Array {
  const b = new Uint8Array(PATTERN_BYTES);
  for (let o = 0; o < b.length; o++) b[o] = ((o >> 9) * 37 + (o & 511) * 11 + disk * 101 + 3) & 0xff;
  return b;
}
/** Sum of the FNV-1a of every 4 KiB block the guest's LCG picked. */
function randomReadChecksum(file: Uint8Array): number {
  const blocks = file.length / 4096;
  let x = RANDOM_SEED,
    sum = 0;
  for (let i = 0; i < RANDOM_READS; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const b = (x >>> 8) % blocks;
    sum = (sum + fnv(file.subarray(b * 4096, b * 4096 + 4096))) >>> 0;
  }
  return sum;
}

type Counters = Record<VpCounterName, number> & { at: number };
interface Rig {
  g: TestGuest;
  host: VmbusHost;
  vsp: StorVsp;
  errors: HvError[];
  files: string[];
  v: Record<string, number>;
  /** VP 0's counters sampled while the guest sat in the exit that printed "@name". */
  marks: Record<string, Counters>;
  /** SYNCHRONIZE CACHE calls that reached each disk's backend. */
  flushes: number[];
}
let dir: string;
const open: TestGuest[] = [];
const disks: RawDisk[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-storvsp-'));
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.dispose()));
  for (const d of disks.splice(0)) d.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function boot(cmdline: string, diskCount: number, options: Partial<StorVspConfig> = {}): Promise<Rig> {
  const files: string[] = [];
  const flushes: number[] = [];
  const scsi: ScsiDisk[] = [];
  for (let i = 0; i < diskCount; i++) {
    const file = path.join(dir, `disk${i}.raw`);
    fs.writeFileSync(file, randomFillSync(new Uint8Array(DISK_BYTES)));
    const raw = RawDisk.open(file);
    disks.push(raw);
    files.push(file);
    const disk = i;
    flushes.push(0);
    // The real file underneath; flushes counted on the way through.
    const counted: BlockBackend = {
      sectorSize: raw.sectorSize,
      sectorCount: raw.sectorCount,
      readOnly: raw.readOnly,
      get ioUs() {
        return raw.ioUs;
      },
      read: (lba, dst) => raw.read(lba, dst),
      write: (lba, src) => raw.write(lba, src),
      flush: () => {
        flushes[disk]!++;
        raw.flush();
      },
      close: () => raw.close(),
    };
    scsi.push(new ScsiDisk(counted, { diskId: randomFillSync(new Uint8Array(16)) }));
  }
  const errors: HvError[] = [];
  const marks: Record<string, Counters> = {};
  let host!: VmbusHost;
  let vsp!: StorVsp;
  const g = await bootTestGuest('storage-synthetic', cmdline, {
    config: { memoryBytes: 32 << 20 },
    beforeStart: (p) => {
      // The guest prints "@mark" lines in one string-I/O exit; the VP waits in it while we sample.
      const h = p.inbox.handler!;
      const com1 = h.ioWriteString.bind(h);
      h.ioWriteString = (vp, port, size, src, count) => {
        const m = /^@(\w+)\n$/.exec(Buffer.from(src).toString('latin1'));
        if (m) marks[m[1]!] = { ...p.counters(0), at: performance.now() };
        com1(vp, port, size, src, count);
      };
      host = new VmbusHost(p, { log: (e) => errors.push(e) });
      vsp = new StorVsp({
        instanceId: '5f3e1c2a-0000-4000-8000-000000000001',
        luns: lunsAtLocations(scsi),
        subChannels: host.server,
        maxSubChannels: 2,
        ...options,
      });
      host.addVsp(vsp);
    },
  });
  open.push(g);
  await g.waitFor('done\n', 30_000);
  return { g, host, vsp, errors, files, v: g.values(), marks, flushes };
}

describe('synthetic SCSI end to end: the storvsc guest against StorVsp on raw files', () => {
  it('initializes, attaches two distinct disks, writes and reads patterns, runs a QD32 random burst and flushes', async () => {
    const { g, host, vsp, errors, files, v, marks, flushes } = await boot('two multi', 2);
    expect(v.storvsc_open).toBe(1);
    expect(v.protocol).toBe(VmstorProtocolVersion.Win10);
    expect(v.max_transfer_bytes).toBe(0x40000);
    expect(v.attach).toBe(0);
    expect(v.sectors).toBe(DISK_BYTES / 512);
    expect(v.max_sectors).toBe(512);
    expect(v.queue_depth).toBeGreaterThanOrEqual(64);
    // LUN 5 has no disk: INQUIRY says "not present" (qualifier 3, type 0x1f), attach refuses it.
    expect(v.lun5_peripheral).toBe(0x7f);
    expect(v.lun5_attach).toBe(5);

    const file0 = new Uint8Array(fs.readFileSync(files[0]!));
    const file1 = new Uint8Array(fs.readFileSync(files[1]!));
    const at = (f: Uint8Array) => f.subarray(PATTERN_LBA * 512, PATTERN_LBA * 512 + PATTERN_BYTES);
    // The bytes landed at LBA 8 of each file, each disk its own pattern.
    expect(at(file0)).toEqual(pattern(0));
    expect(at(file1)).toEqual(pattern(1));
    expect(v.write_status).toBe(0);
    expect(v.pattern_checksum).toBe(fnv(pattern(0)));
    expect(v.readback_checksum).toBe(fnv(at(file0)));
    expect(v.readback_ok).toBe(1);
    expect(v.disk1_attach).toBe(0);
    expect(v.disk1_sectors).toBe(DISK_BYTES / 512);
    expect(v.disk1_readback_checksum).toBe(fnv(at(file1)));
    expect(v.disk1_readback_ok).toBe(1);
    expect(v.disk0_reread_checksum).toBe(fnv(at(file0)));
    expect(fnv(at(file0))).not.toBe(fnv(at(file1)));

    // A sub-channel: offered on CREATE_SUB_CHANNELS, opened by the guest, served like the primary.
    expect(v.max_sub_channels).toBe(2);
    expect(v.sub_create).toBe(1);
    expect(v.sub_open).toBe(1);
    expect(v.sub_relid).toBe(2);
    expect(v.sub_attach).toBe(0);
    expect(v.sub_read_status).toBe(0);
    expect(v.sub_read_checksum).toBe(fnv(at(file0)));
    expect(v.sub_completed).toBe(3); // INQUIRY, READ CAPACITY(16), READ(16)
    expect(vsp.stats.subChannelsOffered).toBe(1);
    expect(vsp.stats.channelsOpened).toBe(2);

    // QD32 random reads: every byte the guest read is the file's.
    expect(v.rand_reads).toBe(RANDOM_READS);
    expect(v.rand_errors).toBe(0);
    expect(v.rand_checksum).toBe(randomReadChecksum(file0));
    expect(v.rand_max_in_flight).toBe(32);
    // Every slot in flight at once, submitted in one batch.
    expect(v.deep_in_flight).toBe(128);
    expect(v.deep_overflow).toBe(4); // BLOCK_QUEUE_FULL
    expect(v.deep_reads).toBe(128);
    expect(v.deep_errors).toBe(0);
    let deep = 0;
    for (let b = 0; b < 128; b++) deep = (deep + fnv(file0.subarray(b * 4096, b * 4096 + 4096))) >>> 0;
    expect(v.deep_checksum).toBe(deep);
    // One publish: one signal at most (none if the host's poll window had the ring masked).
    expect(v.deep_signals_to_host).toBeLessThanOrEqual(1);
    // SYNCHRONIZE CACHE reached the file (fdatasync) after the writes.
    expect(v.flush_status).toBe(0);
    expect(flushes[0]).toBeGreaterThanOrEqual(1);
    expect(v.qd1_errors).toBe(0);

    // Exits and signals per 4 KiB read, from the partition's counters between the phase marks
    // (the end mark's own string-I/O exit taken out).
    const phase = (name: string, reads: number) => {
      const a = marks[`${name}_begin`]!,
        b = marks[`${name}_end`]!;
      const d = (k: VpCounterName) => b[k] - a[k];
      return {
        exits: (d('Exits') - 1) / reads,
        hypercallExits: d('HypercallExits') / reads,
        haltExits: d('HaltExits') / reads,
        signalEvent: d('SignalEventCalls') / reads,
        hostSignals: d('EventsSignalled') / reads,
        interrupts: d('InterruptsDelivered') / reads,
        microsPerRead: ((b.at - a.at) * 1000) / reads,
        raw: { signalEvent: d('SignalEventCalls'), hostSignals: d('EventsSignalled') },
      };
    };
    const qd32 = phase('qd32', v.rand_reads!),
      qd1 = phase('qd1', v.qd1_reads!);
    const fmt = (p: typeof qd1) =>
      `exits ${p.exits.toFixed(3)} (hypercall ${p.hypercallExits.toFixed(3)}, halt ${p.haltExits.toFixed(3)}), ` +
      `guest→host signals ${p.signalEvent.toFixed(3)}, host→guest signals ${p.hostSignals.toFixed(3)}, interrupts ${p.interrupts.toFixed(3)}, ${p.microsPerRead.toFixed(0)} µs/read`;
    console.log(`storvsp per 4 KiB read at QD32: ${fmt(qd32)}; ${v.rand_batches} submit batches; polled drains ${vsp.stats.polledDrains}`);
    console.log(`storvsp per 4 KiB read at QD1:  ${fmt(qd1)}`);
    // The guest's own counts agree with the partition's.
    expect(qd32.raw.signalEvent).toBe(v.rand_signals_to_host);
    expect(qd1.raw.signalEvent).toBe(v.qd1_signals_to_host);
    // Signals per I/O at queue depth 32, both directions: well below 1.
    expect(qd32.signalEvent + qd32.hostSignals).toBeLessThan(0.25);
    expect(qd32.exits).toBeLessThan(0.5);

    // Every request matched its completion; the partition's own counters agree with the guest's.
    expect(v.unmatched).toBe(0);
    expect(v.completed).toBe(v.submitted);
    const c = g.partition.counters(0);
    expect(c.SignalEventCalls).toBe(v.signals_to_host! + v.sub_signals_to_host!);
    expect(v.unloaded).toBe(1);
    expect(host.stats.signalsToGuest).toBe(c.EventsSignalled);
    expect(vsp.stats.badGpaRanges).toBe(0);
    // Every stage of the request path was timed, and the backend's part lies inside the execution.
    for (const stage of ['readUs', 'validateUs', 'executeUs', 'backendUs', 'completeUs', 'signalUs'] as const)
      expect(vsp.stats[stage], stage).toBeGreaterThan(0);
    expect(vsp.stats.backendUs).toBeLessThan(vsp.stats.executeUs);
    expect(vsp.stats.readUs + vsp.stats.validateUs + vsp.stats.executeUs + vsp.stats.completeUs).toBeLessThanOrEqual(vsp.stats.batchUs + 1);
    expect(errors).toEqual([]);
  });

  it('answers hostile requests with errors and keeps serving; negotiates the protocol down', async () => {
    const { vsp, errors, files, v } = await boot('hostile', 1, { versions: [VmstorProtocolVersion.Win8_1, VmstorProtocolVersion.Win8] });
    expect(v.protocol).toBe(VmstorProtocolVersion.Win8_1);
    // Unknown opcode: CHECK CONDITION, ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE → BLOCK_BAD_REQUEST.
    expect(v.badcdb_status).toBe(3);
    expect(v.badcdb_sense_key).toBe(5);
    expect(v.badcdb_asc).toBe(0x20);
    // LBA past the end: ILLEGAL REQUEST / LOGICAL BLOCK ADDRESS OUT OF RANGE → BLOCK_OUT_OF_RANGE.
    expect(v.pastend_status).toBe(2);
    expect(v.pastend_sense_key).toBe(5);
    expect(v.pastend_asc).toBe(0x21);
    // A buffer outside guest memory: refused before any disk access, SRB_STATUS_INVALID_REQUEST.
    expect(v.badgpa_status).toBe(3);
    expect(v.badgpa_srb).toBe(0x06);
    expect(vsp.stats.badGpaRanges).toBe(1);
    // After each, a good read returns the file's bytes.
    expect(v.after_badcdb_read).toBe(0);
    expect(v.after_pastend_read).toBe(0);
    expect(v.after_badgpa_read).toBe(0);
    const file = new Uint8Array(fs.readFileSync(files[0]!));
    expect(v.after_hostile_checksum).toBe(fnv(file.subarray(PATTERN_LBA * 512, PATTERN_LBA * 512 + 4096)));
    // A request without COMPLETION_REQUESTED is not executed; a stray completion is ignored.
    expect(v.after_stray_read).toBe(0);
    expect(vsp.stats.ignoredPackets).toBe(1);
    expect(vsp.stats.unanswered).toBe(1);
    // Refused by the driver without a round trip.
    expect(v.local_pastend).toBe(2);
    expect(v.local_zero).toBe(3);
    expect(v.unmatched).toBe(0);
    expect(v.unloaded).toBe(1);
    // No channel reset, nothing logged as a protocol error.
    expect(errors).toEqual([]);
  });
});
