import { readFileSync, readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { ReceivedPacket, VmbusPacketType, VmbusRing, encodeGpaDirectHeader } from '../../vmbus/ring/index.ts';
import { hostDriver, runVector, type RingVector } from './ring-vector-driver.ts';
import {
  compileGuestRing,
  guestDriver,
  instantiateGuestRing,
  GUEST_MEMORY_BYTES,
  GUEST_RING_CONTROL,
  READ_BUFFER,
  STAGING_PAYLOAD,
} from './ring-guest-driver.ts';

const vectorDir = new URL('../vectors/ring/', import.meta.url);
const vectors: RingVector[] = readdirSync(vectorDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(new URL(f, vectorDir), 'utf8')) as RingVector);

let guestModule: WebAssembly.Module;
beforeAll(async () => {
  guestModule = await compileGuestRing();
});

describe('shared ring vectors (test/vectors/ring)', () => {
  it('has the vectors, each with expected outcomes and final bytes', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(5);
    for (const v of vectors) {
      expect(v.final).toBeDefined();
      for (const s of v.steps) expect(s.expect).toBeDefined();
    }
  });

  for (const v of vectors) {
    it(`host ring reproduces ${v.name}`, () => {
      expect(runVector(v, hostDriver(v))).toEqual(v);
    });
    it(`guest ring (AssemblyScript) reproduces ${v.name}`, () => {
      expect(runVector(v, guestDriver(guestModule, v))).toEqual(v);
    });
  }

  it('host and guest take the ring layout from one file (abi/vmbus-ring.ts)', () => {
    const code = (p: string) => readFileSync(new URL(p, import.meta.url), 'utf8');
    expect(code('../../child-sdk/vmbus/ring-layout.ts')).toContain('export * from "../../abi/vmbus-ring"');
    expect(code('../../vmbus/ring/ring-layout.ts')).toContain("export * from '../../abi/vmbus-ring.ts'");
  });
});

describe('host and guest rings on one memory', () => {
  it('the guest encodes the same one-range GPA-direct header as the host, and refuses a bad one', () => {
    const pages = GUEST_MEMORY_BYTES / 65536;
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const g = instantiateGuestRing(guestModule, memory);
    const mem = GuestMemory.attach(memory);
    const pfns = [0x123, 0x1_0000_0124, 0x125];
    pfns.forEach((pfn, i) => mem.writeU64(STAGING_PAYLOAD + 8 * i, BigInt(pfn)));
    const n = g.gpaDirectHeader(READ_BUFFER, 0x2000, 0x10, STAGING_PAYLOAD, 3);
    expect(mem.read(READ_BUFFER, n)).toEqual(encodeGpaDirectHeader([{ byteCount: 0x2000, byteOffset: 0x10, pfns }]));
    expect(g.gpaDirectHeader(READ_BUFFER, 0x2000, 0x10, STAGING_PAYLOAD, 2)).toBe(0);
    expect(g.gpaDirectHeader(READ_BUFFER, 0x100, 0x1000, STAGING_PAYLOAD, 1)).toBe(0);
  });

  it('what either side writes, the other reads back exactly, across wraps', () => {
    const pages = GUEST_MEMORY_BYTES / 65536;
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const g = instantiateGuestRing(guestModule, memory);
    const mem = GuestMemory.attach(memory);
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: 64 }).map((q) => q * 8),
        fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 0, max: 0xffffffff })), { maxLength: 40 }),
        (dataSize, ops) => {
          mem.zero(GUEST_RING_CONTROL, 4096 + dataSize);
          const ring = VmbusRing.create(mem, GUEST_RING_CONTROL, dataSize) as VmbusRing;
          expect(g.ringInit(GUEST_RING_CONTROL, dataSize)).toBe(1);
          const pkt = new ReceivedPacket(1024);
          for (const [guestWrites, payload, id] of ops) {
            if (VmbusRing.packetTotal(0, payload.length) > ring.maxPacketLength + 8) continue;
            if (guestWrites) {
              mem.write(STAGING_PAYLOAD, payload);
              g.writerBegin();
              expect(g.writerTryWrite(6, 1, id, ~id >>> 0, 0, 0, STAGING_PAYLOAD, payload.length)).toBe(1);
              g.writerCommit();
              const r = ring.reader();
              expect(r.tryRead(pkt)).toBe(pkt);
              expect([pkt.type, pkt.flags, pkt.transIdLo, pkt.transIdHi]).toEqual([6, 1, id, ~id >>> 0]);
              expect(pkt.payload().subarray(0, payload.length)).toEqual(payload);
              expect(r.tryRead(pkt)).toBe(null);
              r.commit();
            } else {
              const w = ring.writer();
              expect(w.tryWriteRaw(VmbusPacketType.Completion, 0, id, 7, null, payload)).toBe(true);
              w.commit();
              g.readerBegin();
              const n = g.readerTryRead(READ_BUFFER, 1024);
              expect(n).toBe(16 + ((payload.length + 7) & ~7));
              const dv = new DataView(memory.buffer);
              expect(dv.getUint16(READ_BUFFER, true)).toBe(11);
              expect(dv.getUint32(READ_BUFFER + 8, true)).toBe(id);
              expect(mem.read(READ_BUFFER + 16, payload.length)).toEqual(payload);
              expect(g.readerTryRead(READ_BUFFER, 1024)).toBe(0);
              g.readerCommit();
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
