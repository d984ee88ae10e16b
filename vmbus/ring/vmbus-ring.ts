import { type GuestMemory, PAGE_SIZE } from '../../hypervisor/guest-memory.ts';
import {
  RING_CONTROL_SIZE,
  RING_FEATURE_BITS,
  RING_FEAT_PENDING_SEND_SZ,
  RING_INTERRUPT_MASK,
  RING_PENDING_SEND_SZ,
  RING_READ_INDEX,
  RING_WRITE_INDEX,
  PACKET_DESCRIPTOR_SIZE,
  PACKET_TRAILER_SIZE,
} from './ring-layout.ts';
import type { RingLayoutError } from './ring-error.ts';
import { RingWriteBatch } from './ring-writer.ts';
import { RingReadBatch } from './ring-reader.ts';

/** Smallest data area that can carry a packet: len8 × 8 + 8 (trailer) must stay below d − 8 (OpenVMM). */
export const RING_MIN_DATA_SIZE = 40;
/** len8 is a u16, so no packet exceeds 0xffff × 8 bytes; larger rings are still allowed. */
export const RING_MAX_DATA_SIZE = 0x7fff_f000;

/**
 * One direction of a VMBus channel: a 4 KiB control page followed by the data area, contiguous in
 * guest physical memory (Linux drivers/hv/ring_buffer.c; Linux include/linux/hyperv.h,
 * struct hv_ring_buffer). The same object serves the producer (writer()) and the consumer
 * (reader()); a side uses one of them. Control words are accessed with Atomics (sequentially
 * consistent), data with TypedArray copies ordered around them as Linux orders them (virt_mb pairs).
 *
 * Hyper-V data areas are multiples of 4 KiB; this class accepts any multiple of 8 from 32 bytes so
 * tests and vectors can use tiny rings. The channel layer enforces page granularity.
 */
export class VmbusRing {
  readonly mem: GuestMemory;
  readonly controlGpa: number;
  readonly dataGpa: number;
  readonly dataSize: number;
  /** Int32Array indices (into mem.i32) of the control words. */
  readonly writeIndexWord: number;
  readonly readIndexWord: number;
  readonly interruptMaskWord: number;
  readonly pendingSendWord: number;
  readonly featureBitsWord: number;
  /** Largest len8 × 8 a packet may have here: packet plus trailer must stay below d − 8. */
  readonly maxPacketLength: number;
  private writeBatch: RingWriteBatch | null = null;
  private readBatch: RingReadBatch | null = null;

  private constructor(mem: GuestMemory, controlGpa: number, dataSize: number) {
    this.mem = mem;
    this.controlGpa = controlGpa;
    this.dataGpa = controlGpa + RING_CONTROL_SIZE;
    this.dataSize = dataSize;
    const w = controlGpa >>> 2;
    this.writeIndexWord = w + RING_WRITE_INDEX / 4;
    this.readIndexWord = w + RING_READ_INDEX / 4;
    this.interruptMaskWord = w + RING_INTERRUPT_MASK / 4;
    this.pendingSendWord = w + RING_PENDING_SEND_SZ / 4;
    this.featureBitsWord = w + RING_FEATURE_BITS / 4;
    this.maxPacketLength = Math.min(0xffff * 8, dataSize - 16 - PACKET_TRAILER_SIZE);
  }

  /** Builds a ring over [controlGpa, controlGpa + 4096 + dataSize); a bad region is a value, not a throw. */
  static create(mem: GuestMemory, controlGpa: number, dataSize: number): VmbusRing | RingLayoutError {
    if (!Number.isInteger(controlGpa) || controlGpa % PAGE_SIZE !== 0) {
      return { kind: 'invalid-layout', reason: `control page GPA ${controlGpa} is not page-aligned` };
    }
    if (!Number.isInteger(dataSize) || dataSize % 8 !== 0 || dataSize < RING_MIN_DATA_SIZE || dataSize > RING_MAX_DATA_SIZE) {
      return { kind: 'invalid-layout', reason: `data size ${dataSize} must be a multiple of 8 in [${RING_MIN_DATA_SIZE}, ${RING_MAX_DATA_SIZE}]` };
    }
    if (!mem.contains(controlGpa, RING_CONTROL_SIZE + dataSize)) {
      return { kind: 'invalid-layout', reason: `ring 0x${controlGpa.toString(16)}+${RING_CONTROL_SIZE + dataSize} is outside guest memory` };
    }
    return new VmbusRing(mem, controlGpa, dataSize);
  }

  /**
   * The producer's initialisation of a ring it owns: indices 0, not blocked, and feature_bits
   * advertising FEAT_PENDING_SEND_SZ (Linux sets feature_bits = 1 on the rings it allocates).
   */
  initAsProducer(featureBits = RING_FEAT_PENDING_SEND_SZ): void {
    const i32 = this.mem.i32;
    Atomics.store(i32, this.pendingSendWord, 0);
    Atomics.store(i32, this.featureBitsWord, featureBits | 0);
  }

  writeIndex(): number {
    return Atomics.load(this.mem.i32, this.writeIndexWord) >>> 0;
  }
  readIndex(): number {
    return Atomics.load(this.mem.i32, this.readIndexWord) >>> 0;
  }
  interruptMask(): number {
    return Atomics.load(this.mem.i32, this.interruptMaskWord) >>> 0;
  }
  pendingSendSize(): number {
    return Atomics.load(this.mem.i32, this.pendingSendWord) >>> 0;
  }
  featureBits(): number {
    return Atomics.load(this.mem.i32, this.featureBitsWord) >>> 0;
  }

  /** True when an index from the control page can be used: below d and 8-byte aligned. */
  isValidIndex(index: number): boolean {
    return index < this.dataSize && (index & 7) === 0;
  }

  /** Bytes between r and w that hold packets (Linux hv_get_bytes_to_read). */
  bytesAvailable(w: number, r: number): number {
    return w >= r ? w - r : this.dataSize - r + w;
  }

  /** Bytes a producer at w may still fill; a write needs strictly more than its total (never full). */
  bytesFree(w: number, r: number): number {
    return w >= r ? this.dataSize - (w - r) : r - w;
  }

  /** The producer's batch; one per ring, reused (begins a new batch on every call). */
  writer(): RingWriteBatch {
    const batch = (this.writeBatch ??= new RingWriteBatch(this));
    batch.begin();
    return batch;
  }

  /** The consumer's batch; one per ring, reused (begins a new batch on every call). */
  reader(): RingReadBatch {
    const batch = (this.readBatch ??= new RingReadBatch(this));
    batch.begin();
    return batch;
  }

  // ---- consumer side: interrupt mask (Linux hv_begin_read / hv_end_read) ----

  /** Tells the producer not to signal: this consumer is draining anyway. */
  maskInterrupt(): void {
    Atomics.store(this.mem.i32, this.interruptMaskWord, 1);
  }

  /**
   * Re-enables signals, then re-checks the ring. Returns true when packets are waiting: the
   * producer may have written while the mask was set and did not signal, so the caller must
   * drain again instead of sleeping (otherwise that wake-up is lost).
   */
  unmaskInterrupt(): boolean {
    const i32 = this.mem.i32;
    Atomics.store(i32, this.interruptMaskWord, 0);
    return Atomics.load(i32, this.writeIndexWord) !== Atomics.load(i32, this.readIndexWord);
  }

  // ---- producer side: flow control (QEMU vmbus_channel_reserve) ----

  /**
   * The producer is blocked on a packet of `totalBytes` (as reported by RingWriteBatch.neededBytes):
   * publish pending_send_sz, then re-read read_index (ordering pair A). Returns true when the
   * space is already there (pending_send_sz is cleared again and the caller retries at once);
   * false means wait for the consumer's signal.
   */
  requestSpace(totalBytes: number): boolean {
    const i32 = this.mem.i32;
    const needed = (totalBytes + 7) & ~7;
    Atomics.store(i32, this.pendingSendWord, needed);
    const r = Atomics.load(i32, this.readIndexWord) >>> 0;
    const w = Atomics.load(i32, this.writeIndexWord) >>> 0;
    if (!this.isValidIndex(r) || !this.isValidIndex(w)) return false;
    if (this.bytesFree(w, r) > needed) {
      Atomics.store(i32, this.pendingSendWord, 0);
      return true;
    }
    return false;
  }

  /** Total ring bytes (packet + trailer) a packet with this extended header and payload takes. */
  static packetTotal(headerLength: number, payloadLength: number): number {
    return PACKET_DESCRIPTOR_SIZE + headerLength + ((payloadLength + 7) & ~7) + PACKET_TRAILER_SIZE;
  }
}
