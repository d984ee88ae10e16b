import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { ReceivedPacket, VmbusRing, RING_FEAT_PENDING_SEND_SZ } from '../../vmbus/ring/index.ts';

// Model-based properties of the host ring: a single-threaded model (a queue of packets and a
// byte count) predicts every outcome of random write/read batches on rings of random size that
// start at random wrap positions.

interface ModelPacket {
  type: number;
  flags: number;
  lo: number;
  hi: number;
  header: Uint8Array;
  payload: Uint8Array;
  total: number;
}

const packetArb = fc.record({
  type: fc.constantFrom(6, 7, 9, 11),
  flags: fc.integer({ min: 0, max: 1 }),
  lo: fc.integer({ min: 0, max: 0xffffffff }),
  hi: fc.integer({ min: 0, max: 0xffffffff }),
  headerQwords: fc.integer({ min: 0, max: 4 }),
  payload: fc.oneof(fc.uint8Array({ maxLength: 24 }), fc.uint8Array({ maxLength: 300 })),
});

const commandArb = fc.oneof(
  fc.record({ op: fc.constant('write' as const), packets: fc.array(packetArb, { minLength: 1, maxLength: 6, size: 'max' }) }),
  fc.record({ op: fc.constant('read' as const), max: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('mask' as const), on: fc.boolean() }),
);

type Command = typeof commandArb extends fc.Arbitrary<infer T> ? T : never;

const CONTROL = 0x2000;
const RUNS = 150;

describe('host ring properties (fast-check)', () => {
  it('reads back exactly what was written, in order; free space and signals match the model', () => {
    const mem = new GuestMemory(128 * 1024);
    const totals = { written: 0, read: 0, wraps: 0 };
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: 160 }).map((q) => q * 8),
        fc.nat(),
        fc.array(commandArb, { minLength: 10, maxLength: 80, size: 'max' }),
        (dataSize, startSeed, commands) => {
          mem.zero(CONTROL, 4096 + dataSize);
          const start = (startSeed % (dataSize / 8)) * 8;
          mem.writeU32(CONTROL, start);
          mem.writeU32(CONTROL + 4, start);
          const ring = VmbusRing.create(mem, CONTROL, dataSize) as VmbusRing;
          ring.initAsProducer(RING_FEAT_PENDING_SEND_SZ);
          const queue: ModelPacket[] = [];
          const backlog: ModelPacket[] = []; // refused packets, retried first: nothing is dropped
          let inFlight = 0;
          let masked = false;
          let written = 0;
          let read = 0;
          const pkt = new ReceivedPacket(ring.maxPacketLength);
          let generated = 0;
          const step = (c: Command): void => {
            if (c.op === 'mask') {
              if (c.on) ring.maskInterrupt();
              else expect(ring.unmaskInterrupt()).toBe(inFlight > 0);
              masked = c.on;
            } else if (c.op === 'write') {
              const wanted: ModelPacket[] = [
                ...backlog,
                ...c.packets
                  .map((p) => {
                    const header = new Uint8Array(p.headerQwords * 8).fill(p.headerQwords);
                    const type = (p.type === 7 || p.type === 9) && p.headerQwords === 0 ? 6 : p.type;
                    return { ...p, type, header, total: VmbusRing.packetTotal(header.length, p.payload.length) };
                  })
                  .filter((p) => p.total - 8 <= ring.maxPacketLength),
              ];
              generated += wanted.length - backlog.length;
              backlog.length = 0;
              const wasEmpty = inFlight === 0;
              const batch = ring.writer();
              let accepted = 0;
              for (let i = 0; i < wanted.length; i++) {
                const p = wanted[i];
                const fits = dataSize - inFlight > p.total; // never-full rule
                expect(batch.freeForPacket() >= p.total || !fits).toBe(true);
                const ok = batch.tryWriteRaw(p.type, p.flags, p.lo, p.hi, p.header.length ? p.header : null, p.payload);
                expect(ok).toBe(fits);
                if (!ok) {
                  expect(batch.neededBytes).toBe(p.total);
                  backlog.push(...wanted.slice(i));
                  break;
                }
                queue.push(p);
                inFlight += p.total;
                accepted++;
                written++;
              }
              const before = ring.writeIndex();
              expect(batch.commit()).toBe(accepted > 0 && wasEmpty && !masked);
              if (ring.writeIndex() < before) totals.wraps++;
            } else {
              const batch = ring.reader();
              const freeBefore = dataSize - inFlight;
              const pending = ring.pendingSendSize();
              for (let i = 0; i < c.max; i++) {
                const r = batch.tryRead(pkt);
                if (queue.length === 0) {
                  expect(r).toBe(null);
                  break;
                }
                expect(r).toBe(pkt);
                const m = queue.shift()!;
                expect([pkt.type, pkt.flags, pkt.transIdLo, pkt.transIdHi]).toEqual([m.type, m.flags, m.lo, m.hi]);
                expect(pkt.header()).toEqual(m.header);
                const payload = pkt.payload();
                expect(payload.subarray(0, m.payload.length)).toEqual(m.payload);
                expect(payload.subarray(m.payload.length).every((b) => b === 0)).toBe(true);
                inFlight -= m.total;
                read++;
              }
              const freeAfter = dataSize - inFlight;
              expect(batch.commit()).toBe(pending !== 0 && freeBefore <= pending && freeAfter > pending);
            }
            // The published indices describe exactly the committed, unread bytes.
            expect(ring.bytesAvailable(ring.writeIndex(), ring.readIndex())).toBe(inFlight);
            expect(ring.bytesFree(ring.writeIndex(), ring.readIndex())).toBe(dataSize - inFlight);
            if (backlog.length > 0 && !ring.requestSpace(backlog[0].total)) {
              expect(ring.pendingSendSize()).toBe(backlog[0].total);
            } else {
              expect(ring.pendingSendSize()).toBe(0);
            }
          };
          for (const c of commands) step(c);
          // Drain: every generated packet arrives, refused ones included (nothing is lost to a full ring).
          for (let guard = 0; (backlog.length > 0 || queue.length > 0) && guard < 10_000; guard++) {
            step({ op: 'read', max: 1_000_000 });
            step({ op: 'write', packets: [] });
          }
          expect(backlog.length + queue.length).toBe(0);
          expect(read).toBe(generated);
          expect(written - read).toBe(queue.length);
          totals.written += written;
          totals.read += read;
        },
      ),
      { numRuns: RUNS },
    );
    // The generators must exercise the ring, not just empty batches.
    expect(totals.read).toBeGreaterThan(10 * RUNS);
    expect(totals.wraps).toBeGreaterThan(RUNS);
  });
});
