import { HvError } from './hv-error.ts';
import { HvStatus } from '../abi/hv-status.ts';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
const WASM_PAGE = 65536;

/**
 * Guest physical memory: one shared WebAssembly.Memory whose byte offsets are GPAs.
 * Its size is fixed at creation (initial == maximum) so a guest cannot grow it, and every host
 * access goes through a bounds check: a GPA range from a guest is never trusted.
 */
export class GuestMemory {
  readonly memory: WebAssembly.Memory;
  readonly buffer: SharedArrayBuffer;
  readonly size: number;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly dv: DataView;

  /** `byteOffset`: RAM starts there in `memory` (see `window`); 0 for a memory that is all RAM. */
  constructor(sizeBytes: number, memory?: WebAssembly.Memory, byteOffset = 0) {
    if (!Number.isInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % WASM_PAGE !== 0 || sizeBytes > 4 * 1024 ** 3) {
      throw new HvError('HV_ERR_MEMORY_SIZE', `guest memory size ${sizeBytes} must be a positive multiple of 64 KiB, at most 4 GiB`);
    }
    const pages = sizeBytes / WASM_PAGE;
    this.memory = memory ?? new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.buffer = this.memory.buffer as unknown as SharedArrayBuffer;
    const fits =
      byteOffset === 0
        ? this.buffer.byteLength === sizeBytes
        : memory !== undefined && Number.isInteger(byteOffset) && byteOffset > 0 && byteOffset % 8 === 0 && byteOffset + sizeBytes <= this.buffer.byteLength;
    if (!fits) {
      throw new HvError('HV_ERR_MEMORY_SIZE', `memory is ${this.buffer.byteLength} bytes, expected ${sizeBytes} at offset ${byteOffset}`);
    }
    this.size = sizeBytes;
    this.u8 = new Uint8Array(this.buffer, byteOffset, sizeBytes);
    this.i32 = new Int32Array(this.buffer, byteOffset, sizeBytes / 4);
    this.u32 = new Uint32Array(this.buffer, byteOffset, sizeBytes / 4);
    this.dv = new DataView(this.buffer, byteOffset, sizeBytes);
  }

  /**
   * Guest RAM that is one part, [byteOffset, byteOffset + sizeBytes), of a larger Wasm memory
   * that also holds other state: the x86 VP kind's emulator keeps its registers and tables in the
   * same memory as the RAM it emulates. GPAs are still 0-based. The memory must not grow while
   * the views are in use if it is not shared (growing detaches a non-shared buffer).
   */
  static window(memory: WebAssembly.Memory, byteOffset: number, sizeBytes: number): GuestMemory {
    return new GuestMemory(sizeBytes, memory, byteOffset);
  }

  /** Wraps a memory received from another thread (workers get the Memory object by postMessage). */
  static attach(memory: WebAssembly.Memory): GuestMemory {
    return new GuestMemory((memory.buffer as ArrayBufferLike).byteLength, memory);
  }

  /** True when [gpa, gpa+length) lies inside RAM. Works for any JS number, including NaN. */
  contains(gpa: number, length: number): boolean {
    return Number.isInteger(gpa) && Number.isInteger(length) && gpa >= 0 && length >= 0 && gpa + length <= this.size;
  }

  check(gpa: number, length: number): void {
    if (!this.contains(gpa, length)) {
      throw new HvError(
        'HV_ERR_GPA_RANGE',
        `GPA range 0x${gpa.toString(16)}+${length} is outside guest memory (${this.size} bytes)`,
        HvStatus.InvalidParameter,
      );
    }
  }

  /** A bounds-checked view that aliases guest memory (no copy). */
  view(gpa: number, length: number): Uint8Array {
    this.check(gpa, length);
    return this.u8.subarray(gpa, gpa + length);
  }

  /** A private copy: what the host validates must not change under it. */
  read(gpa: number, length: number): Uint8Array {
    this.check(gpa, length);
    return this.u8.slice(gpa, gpa + length);
  }

  write(gpa: number, bytes: Uint8Array): void {
    this.check(gpa, bytes.length);
    this.u8.set(bytes, gpa);
  }

  readU32(gpa: number): number {
    this.check(gpa, 4);
    return this.dv.getUint32(gpa, true);
  }

  writeU32(gpa: number, value: number): void {
    this.check(gpa, 4);
    this.dv.setUint32(gpa, value >>> 0, true);
  }

  readU64(gpa: number): bigint {
    this.check(gpa, 8);
    return this.dv.getBigUint64(gpa, true);
  }

  writeU64(gpa: number, value: bigint): void {
    this.check(gpa, 8);
    this.dv.setBigUint64(gpa, BigInt.asUintN(64, value), true);
  }

  zero(gpa: number, length: number): void {
    this.check(gpa, length);
    this.u8.fill(0, gpa, gpa + length);
  }
}
