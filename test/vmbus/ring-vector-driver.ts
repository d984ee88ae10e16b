import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { ReceivedPacket, VmbusRing, RING_CONTROL_SIZE } from '../../vmbus/ring/index.ts';

/**
 * The shared ring test vectors (test/vectors/ring/*.json): a ring's initial control words, a
 * sequence of operations with their expected outcomes, and the exact control-page and data bytes
 * afterwards. The host ring and the guest ring (AssemblyScript) are both driven through RingDriver
 * and must match every outcome and byte.
 */
export interface VectorPacket {
  type: number;
  flags: number;
  /** u64 as 16 hex digits, big-endian reading order. */
  transactionId: string;
  header: string;
  payload: string;
}

export type VectorStep =
  | { op: 'write'; packets: VectorPacket[]; expect?: { written: number; needed: number; signal: boolean } }
  | { op: 'read'; capacity: number; expect?: { packets: string[]; corrupt: boolean; signal: boolean } }
  | { op: 'mask'; expect?: Record<string, never> }
  | { op: 'unmask'; expect?: { pending: boolean } }
  | { op: 'requestSpace'; bytes: number; expect?: { ready: boolean } };

export interface RingVector {
  name: string;
  description: string;
  dataSize: number;
  initial: { writeIndex: number; readIndex: number; interruptMask: number; pendingSendSz: number; featureBits: number };
  /** Hex of the data area before the steps (default: zeros), for rings a peer left malformed. */
  initialData?: string;
  steps: VectorStep[];
  /** Hex of control bytes 0..68 (through feature_bits) and of the whole data area. */
  final?: { control: string; data: string };
}

export interface RingDriver {
  readonly u8: Uint8Array;
  readonly controlGpa: number;
  write(packets: VectorPacket[]): { written: number; needed: number; signal: boolean };
  read(capacity: number): { packets: string[]; corrupt: boolean; signal: boolean };
  mask(): void;
  unmask(): boolean;
  requestSpace(bytes: number): boolean;
}

export const CONTROL_BYTES_COMPARED = 68;

export const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

export function transIdHalves(id: string): [number, number] {
  const v = id.padStart(16, '0');
  return [parseInt(v.slice(8), 16) >>> 0, parseInt(v.slice(0, 8), 16) >>> 0];
}

/** Writes the vector's initial control words (and data, if given) into a zeroed ring region. */
export function seedControl(u8: Uint8Array, controlGpa: number, v: RingVector): void {
  const dv = new DataView(u8.buffer, u8.byteOffset);
  dv.setUint32(controlGpa + 0, v.initial.writeIndex, true);
  dv.setUint32(controlGpa + 4, v.initial.readIndex, true);
  dv.setUint32(controlGpa + 8, v.initial.interruptMask, true);
  dv.setUint32(controlGpa + 12, v.initial.pendingSendSz, true);
  dv.setUint32(controlGpa + 64, v.initial.featureBits, true);
  if (v.initialData) u8.set(unhex(v.initialData), controlGpa + RING_CONTROL_SIZE);
}

/** Runs the steps; returns the vector with every outcome and the final bytes as observed. */
export function runVector(v: RingVector, driver: RingDriver): RingVector {
  const steps: VectorStep[] = v.steps.map((s): VectorStep => {
    switch (s.op) {
      case 'write':
        return { ...s, expect: driver.write(s.packets) };
      case 'read':
        return { ...s, expect: driver.read(s.capacity) };
      case 'mask':
        driver.mask();
        return { ...s, expect: {} };
      case 'unmask':
        return { ...s, expect: { pending: driver.unmask() } };
      case 'requestSpace':
        return { ...s, expect: { ready: driver.requestSpace(s.bytes) } };
    }
  });
  const c = driver.controlGpa;
  const dataGpa = c + RING_CONTROL_SIZE;
  return {
    ...v,
    steps,
    final: {
      control: hex(driver.u8.subarray(c, c + CONTROL_BYTES_COMPARED)),
      data: hex(driver.u8.subarray(dataGpa, dataGpa + v.dataSize)),
    },
  };
}

/** The host ring (vmbus/ring) as a RingDriver. */
export function hostDriver(v: RingVector): RingDriver {
  const mem = new GuestMemory(65536);
  const controlGpa = 0x1000;
  seedControl(mem.u8, controlGpa, v);
  const ring = VmbusRing.create(mem, controlGpa, v.dataSize);
  if (!(ring instanceof VmbusRing)) throw new Error(ring.reason);
  return {
    u8: mem.u8,
    controlGpa,
    write(packets) {
      const batch = ring.writer();
      let written = 0;
      for (const p of packets) {
        const [lo, hi] = transIdHalves(p.transactionId);
        const header = p.header ? unhex(p.header) : null;
        if (!batch.tryWriteRaw(p.type, p.flags, lo, hi, header, unhex(p.payload))) break;
        written++;
      }
      const needed = batch.neededBytes;
      return { written, needed, signal: batch.commit() };
    },
    read(capacity) {
      const batch = ring.reader();
      const pkt = new ReceivedPacket(capacity);
      const packets: string[] = [];
      let corrupt = false;
      for (;;) {
        const r = batch.tryRead(pkt);
        if (r === null) break;
        if (r.kind === 'corrupt') {
          corrupt = true;
          break;
        }
        packets.push(hex(pkt.bytes.subarray(0, pkt.length)));
      }
      return { packets, corrupt, signal: batch.commit() };
    },
    mask: () => ring.maskInterrupt(),
    unmask: () => ring.unmaskInterrupt(),
    requestSpace: (bytes) => ring.requestSpace(bytes),
  };
}
