/**
 * The saved-state file format: sparse memory, structured hypervisor records, header and record
 * checksums (one flipped bit anywhere is refused, naming the record), truncation, versions, and
 * records that do not fit this build's layout — refused whole, with nothing half-restored.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import {
  P_GUEST_OS_ID,
  P_HYPERCALL_MSR,
  P_ROOT_EVENT_FLAGS,
  ROOT_QUEUE_HEADS,
  SINT_QUEUE_BYTES,
  VP_MAILBOX,
  VP_PENDING_VECTORS,
  VP_REGISTERS,
  VP_SIMP,
  VP_SINT,
  VP_SINT_QUEUES,
  VP_STIMER_CONFIG,
  VP_STIMER_DUE,
  vpBase,
} from '../../hypervisor/partition-control.ts';
import { ReferenceClock } from '../../hypervisor/reference-time.ts';
import { encodeRecord, type SavedRecord } from '../../root-partition/ipc/saved-state-schema.ts';
import { crc32c } from '../../root-partition/vmwp/crc32c.ts';
import { capturePartition, restorePartition, SnapshotError, type PartitionSnapshot } from '../../root-partition/vmwp/partition-snapshot.ts';
import { configurationHash, readSavedState, SAVED_STATE_VERSION, SavedStateError, writeSavedState } from '../../root-partition/vmwp/saved-state-file.ts';
import { executionToRecord } from '../../root-partition/vmwp/vp-execution-record.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-ss-'));
const hv = new Hypervisor();
afterAll(async () => {
  await hv.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

const config = { vmId: '00000000-0000-4000-8000-000000000001', memoryBytes: 1 << 20, vpCount: 1, image: new Uint8Array([0, 97, 115, 109]) };
const hash = configurationHash(config);
const HEADER = 52;

function sampleMemory(): Uint8Array {
  const m = new Uint8Array(new SharedArrayBuffer(1 << 20));
  m[0] = 1; // page 0
  m.fill(7, 4096 * 10, 4096 * 13); // pages 10..12: one run
  m[(1 << 20) - 1] = 9; // last page
  return m;
}

const vpState = (vp: number): PartitionSnapshot['vps'][number] => ({
  vp,
  pendingVectors: [0x30, 0xfe],
  scontrol: 1,
  simp: '1048577',
  siefp: '18446744073709551615',
  sint: Array.from({ length: 16 }, (_, i) => String(i === 2 ? 0x50 : 0x10000)),
  timers: [0, 1, 2, 3].map((index) => ({
    index,
    config: String(index === 0 ? 0x30003 : 0),
    count: index === 0 ? '100000' : '0',
    due: index === 0 ? 987654 : -1,
    messagePending: index === 0,
  })),
  registers: [{ name: 0x00020010, value: Uint8Array.from({ length: 16 }, (_, i) => i + 1) }],
  queuedMessages: [{ sint: 3, message: Uint8Array.from({ length: 256 }, (_, i) => i & 0xff) }],
  execution: {
    state: 1,
    entryKind: vp === 0 ? 1 : 2,
    entryRip: vp === 0 ? 0 : 0x1234,
    stack: Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff),
    globals: [
      { name: '__tsvisor_global_1_i32', type: 'i32', bits: Uint8Array.of(1, 2, 3, 4, 0, 0, 0, 0) },
      { name: '__tsvisor_global_3_f64', type: 'f64', bits: Uint8Array.of(0, 0, 0, 0, 0, 0, 0xf8, 0x7f) },
    ],
    resultKind: 3,
    resultValue: '18446744073709551615',
    interruptsEnabled: true,
    runtimeTicks: 123456,
  },
});

/** Every VP of a captured partition marked as never started (the partition tests have no image). */
const notStarted = (s: PartitionSnapshot): PartitionSnapshot => ({
  ...s,
  vps: s.vps.map((v) => ({ ...v, execution: executionToRecord({ vp: v.vp, state: 'not-started' }) })),
});

const snapshot: PartitionSnapshot = {
  vpCount: 1,
  imagePreparation: 'prep',
  guestOsId: '9223372036854775809',
  hypercallMsr: '4097',
  referenceTicks: 123_456_789_012,
  vps: [vpState(0)],
};
const devices = [
  { name: 'pic', version: 1, state: new Uint8Array([1, 2]) },
  { name: 'pci', version: 1, state: new Uint8Array([3, 4, 5, 6]) },
];

/** The file's records: offset of the framing, body length, kind (the first tag's field number). */
function frames(bytes: Buffer): { at: number; length: number; field: number }[] {
  const out = [];
  for (let at = HEADER; at < bytes.length; ) {
    const length = bytes.readUInt32LE(at);
    out.push({ at, length, field: bytes[at + 8] >> 3 });
    at += 8 + length;
  }
  return out;
}

function fileWith(records: SavedRecord[], version = SAVED_STATE_VERSION): Buffer {
  const header = Buffer.alloc(HEADER);
  header.write('TSVSAVE\0', 0, 'latin1');
  header.writeUInt32LE(version, 8);
  header.writeUInt32LE(HEADER, 12);
  hash.copy(header, 16);
  header.writeUInt32LE(crc32c(header.subarray(0, 48)), 48);
  const parts = [header];
  for (const r of records) {
    const body = Buffer.from(encodeRecord(r));
    const f = Buffer.alloc(8);
    f.writeUInt32LE(body.length, 0);
    f.writeUInt32LE(crc32c(body), 4);
    parts.push(f, body);
  }
  return Buffer.concat(parts);
}

/** Byte arrays (Buffer or Uint8Array) as plain arrays, for deep comparison. */
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x, (_k, v) => (v instanceof Uint8Array ? [...v] : v?.type === 'Buffer' ? v.data : v)));

const refusal = (file: string, mem = new Uint8Array(1 << 20)): SavedStateError => {
  try {
    readSavedState(file, hash, mem);
  } catch (e) {
    if (e instanceof SavedStateError) return e;
    throw e;
  }
  throw new Error(`${file} was accepted`);
};

describe('saved-state file', () => {
  const path = join(dir, 'a.vmrs');

  it('crc32c matches the RFC 3720 check values', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from('456789'), crc32c(Buffer.from('123')))).toBe(0xe3069283);
  });

  it('round-trips the partition and VP records, reference time, device records and memory, writing only non-zero pages', () => {
    const mem = sampleMemory();
    const summary = writeSavedState(path, hash, { ...snapshot, devices, memory: mem });
    expect(summary).toMatchObject({ pagesWritten: 5, pageRuns: 3 });
    expect(statSync(path).size).toBe(summary.bytes);
    expect(summary.bytes).toBeLessThan(6 * 4096);
    const back = new Uint8Array(1 << 20).fill(0xee); // restore zeroes what the file leaves out
    const r = readSavedState(path, hash, back);
    expect(plain(r)).toEqual(plain({ ...snapshot, devices }));
    expect(Buffer.from(back).equals(Buffer.from(mem))).toBe(true);
    expect(frames(readFileSync(path)).map((f) => f.field)).toEqual([6, 7, 2, 3, 3, 4, 4, 4, 5]);
  });

  it('refuses a file with any one bit flipped, naming the damaged record', () => {
    writeSavedState(path, hash, { ...snapshot, devices, memory: sampleMemory() });
    const good = readFileSync(path);
    const names: Record<number, RegExp> = {
      6: /partition record/,
      7: /virtual processor record/,
      2: /reference time record/,
      3: /device record/,
      4: /memory run record/,
      5: /end record/,
    };
    const seen = new Set<number>();
    frames(good).forEach((f, n) => {
      // One bit in the middle of the body, one in the last byte, one in the checksum itself.
      for (const [byte, bit] of [
        [f.at + 8 + (f.length >> 1), 3],
        [f.at + 8 + f.length - 1, 0],
        [f.at + 5, 7],
      ]) {
        const bad = Buffer.from(good);
        bad[byte] ^= 1 << bit;
        writeFileSync(join(dir, 'flip'), bad);
        const e = refusal(join(dir, 'flip'));
        expect(e.code, `record #${n} byte ${byte}`).toBe('SAVED_STATE_CORRUPT');
        expect(e.message).toMatch(new RegExp(`record #${n} at byte ${f.at} .*${names[f.field].source}.*checksum mismatch`));
      }
      seen.add(f.field);
    });
    expect([...seen].sort()).toEqual([2, 3, 4, 5, 6, 7]);
    // The header: every byte after the version is covered by its checksum.
    for (const byte of [12, 20, 47, 50]) {
      const bad = Buffer.from(good);
      bad[byte] ^= 0x10;
      writeFileSync(join(dir, 'flip'), bad);
      expect(refusal(join(dir, 'flip')).message).toMatch(/the header is damaged/);
    }
    // A flipped length: a huge claim, or a frame that no longer lines up.
    const f = frames(good)[1];
    for (const bit of [30, 2]) {
      const bad = Buffer.from(good);
      bad.writeUInt32LE(bad.readUInt32LE(f.at) ^ (1 << bit), f.at);
      writeFileSync(join(dir, 'flip'), bad);
      expect(refusal(join(dir, 'flip')).code).toBe('SAVED_STATE_CORRUPT');
    }
  });

  it('refuses a truncated file at every record boundary and inside records, and bytes after the end', () => {
    writeSavedState(path, hash, { ...snapshot, devices, memory: sampleMemory() });
    const good = readFileSync(path);
    const cuts = [10, 30, HEADER, ...frames(good).flatMap((f) => [f.at + 4, f.at + 8 + 1, f.at + 8 + f.length])].filter((c) => c < good.length);
    for (const cut of cuts) {
      writeFileSync(join(dir, 'short'), good.subarray(0, cut));
      expect(refusal(join(dir, 'short')).message, `cut at ${cut}`).toMatch(/is truncated: it ends inside/);
    }
    writeFileSync(join(dir, 'long'), Buffer.concat([good, Buffer.from([0])]));
    expect(refusal(join(dir, 'long')).message).toMatch(/1 bytes follow the end record/);
  });

  it('names the reason when it refuses another file, version or configuration', () => {
    writeSavedState(path, hash, { ...snapshot, devices, memory: sampleMemory() });
    const bytes = readFileSync(path);
    const other = configurationHash({ ...config, memoryBytes: 2 << 20 });
    expect(() => readSavedState(path, other, new Uint8Array(1 << 20))).toThrow(/saved from another configuration/);
    writeFileSync(join(dir, 'magic'), Buffer.concat([Buffer.from('NOTSAVED'), bytes.subarray(8)]));
    expect(refusal(join(dir, 'magic')).code).toBe('SAVED_STATE_NOT_A_FILE');
    for (const v of [1, 2, 4]) {
      const b = Buffer.from(bytes);
      b.writeUInt32LE(v, 8);
      writeFileSync(join(dir, 'v'), b);
      expect(refusal(join(dir, 'v'))).toMatchObject({
        code: 'SAVED_STATE_VERSION',
        message: expect.stringMatching(new RegExp(`format version ${v}${v < 3 ? ' \\(an older file' : ';'}.*this tsvisor reads version 3`)),
      });
    }
  });

  it('refuses the raw control block of format 1, unknown, missing, misplaced or miscounted records', () => {
    const end = (recordCount: number, pageRuns = 0, pagesWritten = 0) => ({ end: { memoryBytes: 1 << 20, pageRuns, pagesWritten, recordCount } });
    const base: SavedRecord[] = [
      { partition: { vpCount: 1, guestOsId: '1', hypercallMsr: '0', imagePreparation: 'p' } },
      { vp: vpState(0) },
      { referenceTime: { referenceTicks: 5 } },
    ];
    const cases: [SavedRecord[] | Buffer, RegExp][] = [
      [
        [{ partitionControl: { vpCount: 1, control: new Uint8Array(300) } }, ...base.slice(1), end(3)],
        /raw control block.*a raw dump of a layout this tsvisor does not read/,
      ],
      [[...base, { partitionControl: { vpCount: 1, control: new Uint8Array(300) } }, end(4)], /raw control block/],
      [[base[0], base[2], end(2)], /reference time.*out of place/],
      [[base[1], base[0], base[2], end(3)], /virtual processor.*out of place/],
      [[base[0], base[1], base[1], base[2], end(4)], /more VP records than the 1 VPs/],
      [[...base, end(7)], /the end record counts 7/],
      [[...base, { memoryRun: { gpa: 4096, data: new Uint8Array(4096).fill(1) } }, end(4, 0, 0)], /1 memory runs of 1 pages; the end record counts 4, 0 and 0/],
      [[...base, { memoryRun: { gpa: (1 << 20) - 4096, data: new Uint8Array(8192).fill(1) } }, end(4, 1, 2)], /not whole pages inside guest memory/],
      [[...base, { memoryRun: { gpa: 100, data: new Uint8Array(4096).fill(1) } }, end(4, 1, 1)], /not whole pages inside guest memory/],
      [[...base, { device: devices[0] }, { referenceTime: { referenceTicks: 6 } }, end(5)], /reference time.*out of place/],
      [[...base, ...Array.from({ length: 65 }, () => ({ device: devices[0] })), end(68)], /more than 64 device records/],
      [[...base], /truncated/],
      [
        [
          { partition: { vpCount: 65, guestOsId: '0', hypercallMsr: '0', imagePreparation: 'p' } },
          ...Array.from({ length: 65 }, (_, vp) => ({ vp: vpState(vp) })),
          end(66),
        ],
        /record #0 .*65 VPs; a partition has 1..64/,
      ],
    ];
    // A record kind from a newer release (field 15): its tag, a length, and nothing this build knows.
    const unknown = Buffer.from([(15 << 3) | 2, 1, 0]);
    const withUnknown = fileWith(base);
    const uf = Buffer.alloc(8);
    uf.writeUInt32LE(unknown.length, 0);
    uf.writeUInt32LE(crc32c(unknown), 4);
    cases.push([Buffer.concat([withUnknown, uf, unknown]), /record #3 .* unreadable: a record of a kind this tsvisor does not know/]);
    for (const [records, message] of cases) {
      writeFileSync(join(dir, 'case'), Buffer.isBuffer(records) ? records : fileWith(records));
      expect(refusal(join(dir, 'case')).message).toMatch(message);
    }
    writeFileSync(join(dir, 'case'), fileWith([...base, end(3)]));
    expect(readSavedState(join(dir, 'case'), hash, new Uint8Array(1 << 20)).referenceTicks).toBe(5);
  });

  it('binds the configuration hash to the VM id, memory, VP count and image bytes', () => {
    const variants = [
      { ...config, vmId: '00000000-0000-4000-8000-000000000002' },
      { ...config, memoryBytes: 2 << 20 },
      { ...config, vpCount: 2 },
      { ...config, image: new Uint8Array([0, 97, 115, 110]) },
    ];
    for (const c of variants) expect(configurationHash(c).equals(hash)).toBe(false);
    expect(configurationHash({ ...config }).equals(hash)).toBe(true);
  });
});

describe('partition snapshot', () => {
  const partition = (vpCount = 2) => {
    const p = hv.createPartition({ memoryBytes: 1 << 20, vpCount });
    p.initialize();
    return p;
  };

  it('captures named values and puts them back into a fresh partition', () => {
    const a = partition();
    const base = vpBase(1);
    a.ctl.i64[P_GUEST_OS_ID >> 3] = -2n;
    a.ctl.i64[P_HYPERCALL_MSR >> 3] = 0x1001n;
    a.ctl.i64[(base + VP_SIMP) >> 3] = 0x5001n;
    a.ctl.i64[(base + VP_SINT + 8 * 2) >> 3] = 0x52n;
    a.ctl.i64[(base + VP_STIMER_CONFIG) >> 3] = 0x30003n;
    a.ctl.f64[(base + VP_STIMER_DUE) >> 3] = 4242;
    a.ctl.i32[(base + VP_PENDING_VECTORS + 4) >> 2] = 1 << 3; // vector 35
    a.ctl.u8.fill(0xab, base + VP_REGISTERS + 16 * 17, base + VP_REGISTERS + 16 * 18); // Rflags' slot
    const q = base + VP_SINT_QUEUES; // SINT0's queue: head, tail, then entries
    a.ctl.u8.fill(0x77, q + 8 + 8, q + 8 + 8 + 256); // a timer message queued for SINT0
    a.ctl.i32[(q + 4) >> 2] = 1;
    ReferenceClock.freeze(a.ctl);
    const s = notStarted(capturePartition(a));
    expect(s.vps[1]).toMatchObject({ simp: String(0x5001), pendingVectors: [35], registers: [{ name: 0x00020011 }], queuedMessages: [{ sint: 0 }] });
    expect(s.guestOsId).toBe('18446744073709551614');
    const b = partition();
    restorePartition(b, s);
    const region = (p: typeof a, from: number, to: number) => Buffer.from(p.ctl.u8.subarray(from, to));
    const same = (from: number, to: number) => expect(region(b, from, to).equals(region(a, from, to)), `bytes ${from}..${to}`).toBe(true);
    same(P_GUEST_OS_ID, P_HYPERCALL_MSR + 8);
    for (const vb of [vpBase(0), base]) {
      same(vb + VP_PENDING_VECTORS, vb + VP_MAILBOX); // vectors, SynIC registers, timers
      same(vb + VP_REGISTERS, vb + VP_SINT_QUEUES + SINT_QUEUE_BYTES); // registers, SINT0's queue
    }
    expect(region(b, base + VP_SINT_QUEUES + 16, base + VP_SINT_QUEUES + 16 + 256).every((x) => x === 0x77)).toBe(true);
    // Frozen at the saved value until the worker thaws it as the VPs start.
    expect(b.referenceTime()).toBe(s.referenceTicks);
    ReferenceClock.thaw(b.ctl);
    expect(b.referenceTime()).toBeGreaterThanOrEqual(s.referenceTicks);
    expect(b.referenceTime() - s.referenceTicks).toBeLessThan(10_000_000); // within a second, not the time since a's start
  });

  it('refuses to capture a partition with a message or event in flight on a port', () => {
    const cases: [(p: ReturnType<typeof partition>) => void, RegExp][] = [
      [
        (p) => {
          p.ctl.i32[(ROOT_QUEUE_HEADS + 3 * 8 + 4) >> 2] = 1;
        },
        /a message from the guest to the root partition is still queued/,
      ],
      [
        (p) => {
          p.ctl.i32[(P_ROOT_EVENT_FLAGS >> 2) + 5] = 0x100;
        },
        /an event the guest signalled to the root partition is not yet served/,
      ],
      [
        (p) => {
          const q = vpBase(1) + VP_SINT_QUEUES + 2 * SINT_QUEUE_BYTES;
          p.ctl.i32[(q + 8) >> 2] = 4;
          p.ctl.i32[(q + 4) >> 2] = 1;
        },
        /a port message for SINT 2 of VP 1 is not yet delivered/,
      ],
    ];
    for (const [set, message] of cases) {
      const p = partition();
      ReferenceClock.freeze(p.ctl);
      expect(() => capturePartition(p)).not.toThrow();
      set(p);
      expect(() => capturePartition(p)).toThrow(message);
    }
  });

  it('refuses a snapshot of another layout whole, leaving the partition untouched', () => {
    const bad: [Partial<PartitionSnapshot> | ((s: PartitionSnapshot) => void), RegExp][] = [
      [{ vpCount: 3 }, /3 VPs; this one has 2/],
      [
        (s) => {
          s.vps[1].vp = 5;
        },
        /virtual processor records 0, 5/,
      ],
      [
        (s) => {
          s.vps[1].sint.pop();
        },
        /VP 1: 15 SINT registers; the SynIC has 16/,
      ],
      [
        (s) => {
          s.vps[0].timers.push({ index: 4, config: '0', count: '0', due: -1, messagePending: false });
        },
        /synthetic timers 0, 1, 2, 3, 4/,
      ],
      [
        (s) => {
          s.vps[1].registers.push({ name: 0x00020012, value: new Uint8Array(16) });
        },
        /register 0x20012 is not one this hypervisor keeps/,
      ],
      [
        (s) => {
          s.vps[1].registers.push({ name: 0x00020000, value: new Uint8Array(8) });
        },
        /has 8 bytes, not 16/,
      ],
      [
        (s) => {
          s.vps[1].pendingVectors.push(256);
        },
        /vector is outside 0..255/,
      ],
      [
        (s) => {
          s.vps[1].simp = '18446744073709551616';
        },
        /VP 1 SIMP is not a 64-bit value/,
      ],
      [
        (s) => {
          s.vps[0].queuedMessages.push({ sint: 16, message: new Uint8Array(256) });
        },
        /queued message for SINT 16/,
      ],
      [
        (s) => {
          s.vps[0].queuedMessages.push(...Array.from({ length: 21 }, () => ({ sint: 1, message: new Uint8Array(256) })));
        },
        /more than 20 messages queued for SINT 1/,
      ],
      [{ imagePreparation: 'another' }, /captured from another preparation of the guest image/],
      [
        (s) => {
          delete s.vps[1].execution;
        },
        /VP 1: the record holds no execution state/,
      ],
      [
        (s) => {
          s.vps[0].execution = { ...vpState(0).execution!, resultKind: 9 };
        },
        /VP 0: exit result kind 9/,
      ],
      [
        (s) => {
          s.vps[0].execution = { ...vpState(0).execution!, entryKind: 2 };
        },
        /VP 0 always enters at boot/,
      ],
      [
        (s) => {
          s.vps[1].execution = { ...vpState(1).execution!, resultKind: 2, resultValue: '4294967296' };
        },
        /VP 1: exit result 4294967296 does not fit 32 bits/,
      ],
      [
        (s) => {
          s.vps[1].execution = { ...vpState(1).execution!, stack: new Uint8Array(9 * 1024 * 1024) };
        },
        /VP 1: a stack of 9437184 bytes/,
      ],
    ];
    const a = partition();
    a.ctl.i64[(vpBase(1) + VP_SIMP) >> 3] = 0x5001n;
    ReferenceClock.freeze(a.ctl);
    for (const [change, message] of bad) {
      const s = structuredClone(notStarted(capturePartition(a)));
      s.vps[1].pendingVectors.push(40);
      if (typeof change === 'function') change(s);
      else Object.assign(s, change);
      const b = partition();
      const before = Buffer.from(b.ctl.u8.slice());
      let err: unknown;
      try {
        restorePartition(b, s);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SnapshotError);
      expect((err as Error).message).toMatch(message);
      expect(Buffer.from(b.ctl.u8).equals(before)).toBe(true);
    }
  });
});
