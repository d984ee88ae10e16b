import { beforeAll, describe, expect, it } from 'vitest';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { ReceivedPacket, VmbusRing, RING_CONTROL_SIZE, VmbusPacketType, decodeGpaDirectHeader, decodeTransferPageHeader } from '../../vmbus/ring/index.ts';
import { compileGuestRing, instantiateGuestRing } from './ring-guest-driver.ts';

// Fuzzing the readers (and the host writer) with malformed rings: random or mutated control
// words and descriptor bytes. Nothing may throw, every packet returned must be a copy of bytes
// inside the ring's data area at the offsets the framing implies, and nothing outside the ring's
// own index word may change (canaries fill the rest of memory).

/** Deterministic PRNG (mulberry32): the fuzz runs are reproducible from the seed in a failure. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MEMORY = 128 * 1024;
const CONTROL = 0x10000;
const ITERATIONS = 1500;

interface Case {
  dataSize: number;
  snapshot: Uint8Array;
}

/** Fills memory with canaries, then builds a ring that is valid, mutated or random noise. */
function buildCase(u8: Uint8Array, mem: GuestMemory, rand: () => number): Case {
  const dataSize = 8 * (5 + Math.floor(rand() * (rand() < 0.5 ? 32 : 1024)));
  for (let i = 0; i < u8.length; i += 4096) u8.fill((i >>> 12) * 37 + 11, i, i + 4096);
  const end = CONTROL + RING_CONTROL_SIZE + dataSize;
  const mode = rand();
  if (mode < 0.3) {
    for (let i = CONTROL; i < end; i++) u8[i] = (rand() * 256) | 0;
    if (rand() < 0.7) {
      const pick = () => (rand() < 0.8 ? 8 * Math.floor(rand() * (dataSize / 8)) : (rand() * 0xffffffff) >>> 0);
      mem.writeU32(CONTROL, pick());
      mem.writeU32(CONTROL + 4, pick());
    }
  } else {
    u8.fill(0, CONTROL, end);
    const start = 8 * Math.floor(rand() * (dataSize / 8));
    mem.writeU32(CONTROL, start);
    mem.writeU32(CONTROL + 4, start);
    const ring = VmbusRing.create(mem, CONTROL, dataSize) as VmbusRing;
    const w = ring.writer();
    const types = [6, 7, 9, 11];
    for (let n = 0; n < 20; n++) {
      let hq = Math.floor(rand() * 3);
      if (16 + 8 * hq > ring.maxPacketLength) hq = 0;
      const len = Math.floor(rand() * (Math.min(200, ring.maxPacketLength - 8 * hq - 16) + 1));
      const type = hq === 0 ? 6 : types[Math.floor(rand() * 4)];
      const header = hq ? new Uint8Array(8 * hq).map(() => (rand() * 256) | 0) : null;
      if (!w.tryWriteRaw(type, rand() < 0.5 ? 1 : 0, n, 0, header, new Uint8Array(len).fill(n))) break;
    }
    w.commit();
    const flips = Math.floor(rand() * 4);
    for (let k = 0; k < flips; k++) {
      const off = rand() < 0.1 ? Math.floor(rand() * 16) : RING_CONTROL_SIZE + Math.floor(rand() * dataSize);
      u8[CONTROL + off] = (rand() * 256) | 0;
    }
  }
  return { dataSize, snapshot: u8.slice() };
}

/** Everything but the words this side may write must equal the snapshot. */
function expectUntouchedExcept(u8: Uint8Array, snapshot: Uint8Array, allowed: [number, number][]): void {
  for (const [a, b] of allowed) snapshot.set(u8.subarray(a, b), a);
  if (Buffer.compare(Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength), snapshot) !== 0) {
    const i = u8.findIndex((b, k) => b !== snapshot[k]);
    throw new Error(`byte at GPA 0x${i.toString(16)} changed outside the ring's writable words`);
  }
}

function expectCopyOfRing(bytes: Uint8Array, length: number, u8: Uint8Array, dataGpa: number, dataSize: number, start: number): void {
  for (let i = 0; i < length; i++) {
    if (bytes[i] !== u8[dataGpa + ((start + i) % dataSize)]) throw new Error(`byte ${i} of a packet at ${start} is not ring data`);
  }
}

describe('ring fuzz: malformed rings', () => {
  let guestModule: WebAssembly.Module;
  beforeAll(async () => {
    guestModule = await compileGuestRing();
  });

  it('host reader: no exception, packets are copies of ring bytes, only read_index changes', () => {
    const mem = new GuestMemory(MEMORY);
    const u8 = mem.u8;
    const rand = rng(0x5eed1);
    const outcomes = { packets: 0, corrupt: 0, empty: 0 };
    for (let it = 0; it < ITERATIONS; it++) {
      const { dataSize, snapshot } = buildCase(u8, mem, rand);
      const ring = VmbusRing.create(mem, CONTROL, dataSize) as VmbusRing;
      const pkt = new ReceivedPacket(rand() < 0.2 ? 64 : 8192);
      const batch = ring.reader();
      let pos = mem.readU32(CONTROL + 4);
      for (let n = 0; n < 40; n++) {
        const r = batch.tryRead(pkt);
        if (r === null) {
          outcomes.empty++;
          break;
        }
        if (r.kind === 'corrupt') {
          outcomes.corrupt++;
          expect(batch.tryRead(pkt)).toBe(r);
          break;
        }
        outcomes.packets++;
        expectCopyOfRing(pkt.bytes, pkt.length, u8, ring.dataGpa, dataSize, pos);
        if (pkt.type === VmbusPacketType.DataUsingGpaDirect) decodeGpaDirectHeader(pkt);
        if (pkt.type === VmbusPacketType.DataUsingTransferPages) decodeTransferPageHeader(pkt);
        pos = (pos + pkt.length + 8) % dataSize;
      }
      batch.commit();
      const published = mem.readU32(CONTROL + 4);
      expect(
        published === (snapshot[CONTROL + 4] + (snapshot[CONTROL + 5] << 8) + (snapshot[CONTROL + 6] << 16) + (snapshot[CONTROL + 7] << 24)) >>> 0 ||
          published === pos,
      ).toBe(true);
      expectUntouchedExcept(u8, snapshot, [[CONTROL + 4, CONTROL + 8]]);
    }
    // The mix must reach all three outcomes, packets most of all.
    expect(outcomes.packets).toBeGreaterThan(ITERATIONS);
    expect(outcomes.corrupt).toBeGreaterThan(ITERATIONS / 10);
    expect(outcomes.empty).toBeGreaterThan(ITERATIONS / 20);
  });

  it('host writer on a corrupt ring: no exception, writes only inside the data area and its own words', () => {
    const mem = new GuestMemory(MEMORY);
    const u8 = mem.u8;
    const rand = rng(0x5eed2);
    for (let it = 0; it < ITERATIONS / 3; it++) {
      const { dataSize, snapshot } = buildCase(u8, mem, rand);
      const ring = VmbusRing.create(mem, CONTROL, dataSize) as VmbusRing;
      const w = ring.writer();
      for (let n = 0; n < 10; n++) {
        const len = Math.floor(rand() * (ring.maxPacketLength - 16 + 1));
        if (!w.tryWriteRaw(6, 0, n, 0, null, new Uint8Array(len))) break;
      }
      w.commit();
      ring.requestSpace(64);
      const dataGpa = CONTROL + RING_CONTROL_SIZE;
      expectUntouchedExcept(u8, snapshot, [
        [CONTROL, CONTROL + 4],
        [CONTROL + 12, CONTROL + 16],
        [dataGpa, dataGpa + dataSize],
      ]);
    }
  });

  it('guest writer (AssemblyScript) on a corrupt ring: writes only inside the data area and its own words', () => {
    const memory = new WebAssembly.Memory({ initial: 32, maximum: 32, shared: true });
    const g = instantiateGuestRing(guestModule, memory);
    const mem = GuestMemory.attach(memory);
    const u8 = mem.u8;
    const src = 0x40000;
    const lowPart = new Uint8Array(u8.buffer, 0, 0x62000);
    const rand = rng(0x5eed4);
    let written = 0;
    for (let it = 0; it < ITERATIONS / 3; it++) {
      const { dataSize, snapshot } = buildCase(lowPart, mem, rand);
      expect(g.ringInit(CONTROL, dataSize)).toBe(1);
      g.writerBegin();
      for (let n = 0; n < 10; n++) {
        const r = g.writerTryWrite(6, 0, n, 0, 0, 0, src, Math.floor(rand() * (rand() < 0.5 ? 64 : 9000)));
        if (r !== 1) break;
        written++;
      }
      g.writerCommit();
      g.requestSpace(64);
      const dataGpa = CONTROL + RING_CONTROL_SIZE;
      expectUntouchedExcept(lowPart, snapshot, [
        [CONTROL, CONTROL + 4],
        [CONTROL + 12, CONTROL + 16],
        [dataGpa, dataGpa + dataSize],
      ]);
    }
    expect(written).toBeGreaterThan(ITERATIONS / 10);
  });

  it('guest reader (AssemblyScript): packets are copies of ring bytes, only read_index and its buffer change', () => {
    const memory = new WebAssembly.Memory({ initial: 32, maximum: 32, shared: true });
    const g = instantiateGuestRing(guestModule, memory);
    const mem = GuestMemory.attach(memory);
    const u8 = mem.u8;
    const dst = 0x60000;
    const lowPart = new Uint8Array(u8.buffer, 0, 0x62000); // below the image (1 MiB): the fuzzed region
    const rand = rng(0x5eed3);
    let packets = 0;
    for (let it = 0; it < ITERATIONS / 2; it++) {
      const { dataSize, snapshot } = buildCase(lowPart, mem, rand);
      expect(g.ringInit(CONTROL, dataSize)).toBe(1);
      g.readerBegin();
      let pos = mem.readU32(CONTROL + 4);
      const capacity = rand() < 0.2 ? 64 : 8192;
      for (let n = 0; n < 40; n++) {
        const len = g.readerTryRead(dst, capacity);
        if (len <= 0) break;
        packets++;
        expect(len).toBeLessThanOrEqual(capacity);
        expectCopyOfRing(u8.subarray(dst), len, u8, CONTROL + RING_CONTROL_SIZE, dataSize, pos);
        pos = (pos + len + 8) % dataSize;
      }
      g.readerCommit();
      expectUntouchedExcept(lowPart, snapshot, [
        [CONTROL + 4, CONTROL + 8],
        [dst, dst + capacity],
      ]);
    }
    expect(packets).toBeGreaterThan(ITERATIONS / 2);
  });
});
