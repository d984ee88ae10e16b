import { compileAssemblyScript } from '../helpers/compile-as.ts';
import { seedControl, transIdHalves, unhex, hex, type RingDriver, type RingVector, type VectorPacket } from './ring-vector-driver.ts';

/** Exports of child-sdk/vmbus/ring-harness.ts (bool results arrive as 0/1). */
export interface GuestRingExports {
  ringInit(controlGpa: number, dataSize: number): number;
  ringInitProducer(featureBits: number): void;
  writerBegin(): void;
  writerTryWrite(type: number, flags: number, lo: number, hi: number, header: number, headerLen: number, payload: number, payloadLen: number): number;
  writerCommit(): number;
  writerNeeded(): number;
  writerCorruption(): number;
  requestSpace(total: number): number;
  readerBegin(): void;
  readerTryRead(dst: number, capacity: number): number;
  readerCommit(): number;
  readerCorruption(): number;
  maskInterrupt(): void;
  unmaskInterrupt(): number;
  gpaDirectHeader(dst: number, byteCount: number, byteOffset: number, pfns: number, pfnCount: number): number;
}

/** Guest memory map for the harness: the image links at 1 MiB; everything here stays below. */
export const GUEST_MEMORY_BYTES = 2 * 1024 * 1024;
export const GUEST_RING_CONTROL = 0x8000;
export const STAGING_HEADER = 0x20000;
export const STAGING_PAYLOAD = 0x30000;
export const READ_BUFFER = 0x40000;
export const READ_BUFFER_BYTES = 0x40000;

export function compileGuestRing(): Promise<WebAssembly.Module> {
  return compileAssemblyScript(new URL('../../child-sdk/vmbus/ring-harness.ts', import.meta.url).pathname);
}

export function instantiateGuestRing(module: WebAssembly.Module, memory: WebAssembly.Memory): GuestRingExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as GuestRingExports;
}

/** The AssemblyScript ring as a RingDriver, in a fresh memory. */
export function guestDriver(module: WebAssembly.Module, v: RingVector): RingDriver {
  const pages = GUEST_MEMORY_BYTES / 65536;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const g = instantiateGuestRing(module, memory);
  const u8 = new Uint8Array(memory.buffer);
  seedControl(u8, GUEST_RING_CONTROL, v);
  if (g.ringInit(GUEST_RING_CONTROL, v.dataSize) !== 1) throw new Error('guest ring refused the layout');
  return {
    u8,
    controlGpa: GUEST_RING_CONTROL,
    write(packets: VectorPacket[]) {
      g.writerBegin();
      let written = 0;
      for (const p of packets) {
        const [lo, hi] = transIdHalves(p.transactionId);
        const header = unhex(p.header);
        const payload = unhex(p.payload);
        u8.set(header, STAGING_HEADER);
        u8.set(payload, STAGING_PAYLOAD);
        const r = g.writerTryWrite(p.type, p.flags, lo, hi, STAGING_HEADER, header.length, STAGING_PAYLOAD, payload.length);
        if (r < 0) throw new Error(`guest tryWrite error ${r}`);
        if (r === 0) break;
        written++;
      }
      const needed = g.writerNeeded();
      return { written, needed, signal: g.writerCommit() === 1 };
    },
    read(capacity: number) {
      g.readerBegin();
      const packets: string[] = [];
      let corrupt = false;
      for (;;) {
        const n = g.readerTryRead(READ_BUFFER, Math.min(capacity, READ_BUFFER_BYTES));
        if (n === 0) break;
        if (n < 0) {
          corrupt = true;
          break;
        }
        packets.push(hex(u8.subarray(READ_BUFFER, READ_BUFFER + n)));
      }
      return { packets, corrupt, signal: g.readerCommit() === 1 };
    },
    mask: () => g.maskInterrupt(),
    unmask: () => g.unmaskInterrupt() === 1,
    requestSpace: (bytes: number) => g.requestSpace(bytes) === 1,
  };
}
