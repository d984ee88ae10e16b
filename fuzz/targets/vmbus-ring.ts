/**
 * The host's VMBus ring reader and writer (vmbus/ring) over a ring whose control page and data
 * the guest wrote: input `[u16 size][u32 write_index][u32 read_index][u32 interrupt_mask]
 * [u32 pending_send_sz][data…]`; the data area is 8 × (5 + size % 512) bytes. The reader takes
 * packets until empty or corrupt, decoding GPA-direct and transfer-page headers; then the writer
 * writes and commits. Bugs: an exception, a packet that is not a copy of ring bytes at the
 * offsets the framing implies, a corrupt ring that does not stay corrupt, a write outside the
 * data area and the ring's own index words.
 */
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { RING_CONTROL_SIZE, ReceivedPacket, VmbusPacketType, VmbusRing, decodeGpaDirectHeader, decodeTransferPageHeader } from '../../vmbus/ring/index.ts';
import { invariant, type FuzzTarget } from '../engine/target.ts';
import { InputBuilder, InputCursor } from './input-cursor.ts';

const MEMORY = 0x10000;
const CONTROL = 0x1000;
const CANARY = 0xa5;

function seed(size: number, write: number, read: number, packets: [type: number, headerQwords: number, length: number][]): Uint8Array {
  const dataSize = 8 * (5 + (size % 512));
  const mem = new GuestMemory(MEMORY);
  const ring = VmbusRing.create(mem, CONTROL, dataSize) as VmbusRing;
  mem.writeU32(CONTROL, write);
  mem.writeU32(CONTROL + 4, read);
  const w = ring.writer();
  packets.forEach(([type, hq, len], i) => w.tryWriteRaw(type, 1, i, 0, hq ? new Uint8Array(8 * hq).fill(i + 1) : null, new Uint8Array(len).fill(0x30 + i)));
  w.commit();
  return new InputBuilder()
    .u16(size)
    .u32(mem.readU32(CONTROL))
    .u32(mem.readU32(CONTROL + 4))
    .u32(0)
    .u32(0)
    .bytes(mem.u8.subarray(CONTROL + RING_CONTROL_SIZE, CONTROL + RING_CONTROL_SIZE + dataSize))
    .build();
}

export function createTarget(): FuzzTarget {
  const mem = new GuestMemory(MEMORY);
  const u8 = mem.u8;
  const pkt = new ReceivedPacket(8192);
  return {
    name: 'vmbus-ring',
    description: 'VMBus ring reader/writer over a guest-written control page and data area',
    maxInputBytes: 18 + 8 * 517,
    dictionary: [Uint8Array.of(6, 0), Uint8Array.of(7, 0), Uint8Array.of(9, 0), Uint8Array.of(11, 0), Uint8Array.of(0xf8, 0xff, 0xff, 0xff)],
    seeds: () => [
      seed(60, 0, 0, [
        [6, 0, 24],
        [9, 3, 8],
        [7, 2, 40],
        [11, 1, 0],
      ]),
      seed(20, 0, 120, [
        [6, 0, 100],
        [6, 0, 8],
      ]),
      seed(1, 0, 0, []),
    ],
    run(input) {
      const c = new InputCursor(input);
      const dataSize = 8 * (5 + (c.u16() % 512));
      u8.fill(CANARY);
      u8.fill(0, CONTROL, CONTROL + RING_CONTROL_SIZE);
      for (let i = 0; i < 4; i++) mem.writeU32(CONTROL + 4 * i, c.u32());
      const dataGpa = CONTROL + RING_CONTROL_SIZE;
      u8.fill(0, dataGpa, dataGpa + dataSize);
      u8.set(c.take(dataSize), dataGpa);
      const ring = VmbusRing.create(mem, CONTROL, dataSize);
      invariant(ring instanceof VmbusRing, 'a ring the fuzzer sized validly was refused');
      const before = u8.slice();

      const reader = ring.reader();
      let pos = mem.readU32(CONTROL + 4);
      for (let n = 0; n < 64; n++) {
        const r = reader.tryRead(pkt);
        if (r === null) break;
        if (r.kind === 'corrupt') {
          invariant(reader.tryRead(pkt) === r, 'a corrupt ring read as usable again');
          break;
        }
        for (let i = 0; i < pkt.length; i++) {
          invariant(pkt.bytes[i] === u8[dataGpa + ((pos + i) % dataSize)], `byte ${i} of the packet at ${pos} is not ring data`);
        }
        if (pkt.type === VmbusPacketType.DataUsingGpaDirect) decodeGpaDirectHeader(pkt);
        if (pkt.type === VmbusPacketType.DataUsingTransferPages) decodeTransferPageHeader(pkt);
        pos = (pos + pkt.length + 8) % dataSize;
      }
      reader.commit();
      const w = ring.writer();
      for (let n = 0; n < 4; n++) {
        const len = Math.min(n * 40, Math.max(0, ring.maxPacketLength - 16));
        if (!w.tryWriteRaw(6, 0, n, 0, null, new Uint8Array(len).fill(n))) break;
      }
      w.commit();
      ring.requestSpace(64);
      ring.unmaskInterrupt();
      // Only the data area and the index/mask/pending words may have changed.
      for (let i = 0; i < u8.length; i++) {
        if (u8[i] === before[i]) continue;
        const inData = i >= dataGpa && i < dataGpa + dataSize;
        invariant(inData || (i >= CONTROL && i < CONTROL + 16), `byte at GPA 0x${i.toString(16)} changed outside the ring`);
      }
    },
    isExpectedError: () => false,
  };
}
