import { HvError } from '../../hypervisor/hv-error.ts';
import { PACKET_DESCRIPTOR_SIZE, PACKET_TRAILER_SIZE, type VmbusPacketType } from './ring-layout.ts';
import { badIndexReason, corrupt, type RingCorruption } from './ring-error.ts';
import type { VmbusRing } from './vmbus-ring.ts';

/** A packet to send; the convenience form of RingWriteBatch.tryWriteRaw. */
export interface OutgoingPacket {
  type: VmbusPacketType;
  /** VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED or 0. */
  flags?: number;
  /** u64; a number must be a safe integer. */
  transactionId?: bigint | number;
  /** Type-specific extended header (GPA ranges, transfer-page ranges): a multiple of 8 bytes. */
  header?: Uint8Array;
  payload?: Uint8Array;
}

const TWO_POW_32 = 0x1_0000_0000;
const EMPTY = new Uint8Array(0);

/**
 * The producer's batch (Linux hv_ringbuffer_write, OpenVMM vmbus_ring commit_write): packets are
 * written behind a private cursor and become visible to the consumer only at commit(), which
 * publishes write_index once and says whether the consumer must be signalled.
 */
export class RingWriteBatch {
  private readonly ring: VmbusRing;
  /** write_index when the batch began: the signal rule compares read_index against it. */
  private start = 0;
  private pos = 0;
  /** Last read_index seen; refreshed only when space looks short (ordering pair B). */
  private readIndex = 0;
  /** Packets written in this batch. */
  packets = 0;
  /** Ring bytes (packet + trailer) of the packet that did not fit; for VmbusRing.requestSpace. */
  neededBytes = 0;
  /** Set when the control page holds impossible indices; tryWrite then refuses everything. */
  corruption: RingCorruption | null = null;

  constructor(ring: VmbusRing) {
    this.ring = ring;
  }

  /** Starts a batch at the published write_index (VmbusRing.writer() calls this). */
  begin(): void {
    const ring = this.ring;
    const w = ring.writeIndex();
    const r = ring.readIndex();
    this.packets = 0;
    this.neededBytes = 0;
    this.corruption = null;
    this.start = this.pos = w;
    this.readIndex = r;
    if (!ring.isValidIndex(w)) this.corruption = corrupt(badIndexReason('write_index', w, ring.dataSize));
    else if (!ring.isValidIndex(r)) this.corruption = corrupt(badIndexReason('read_index', r, ring.dataSize));
  }

  /** Bytes that a packet may still take now (by the last read_index seen), 0 when none fits. */
  freeForPacket(): number {
    const free = this.ring.bytesFree(this.pos, this.readIndex) - PACKET_TRAILER_SIZE;
    return Math.max(free, 0);
  }

  tryWrite(packet: OutgoingPacket): boolean {
    const id = packet.transactionId ?? 0;
    let lo: number, hi: number;
    if (typeof id === 'bigint') {
      const v = BigInt.asUintN(64, id);
      lo = Number(v & 0xffff_ffffn);
      hi = Number(v >> 32n);
    } else {
      lo = id % TWO_POW_32;
      hi = Math.floor(id / TWO_POW_32);
    }
    const payload = packet.payload ?? EMPTY;
    return this.tryWriteRaw(packet.type, packet.flags ?? 0, lo, hi, packet.header ?? null, payload, 0, payload.length);
  }

  /**
   * Writes one packet behind the cursor: descriptor, extended header, payload[payloadStart,
   * payloadEnd) zero-padded to 8, trailer. Returns false when the ring has no room (never-full
   * rule: free must exceed the total; neededBytes says how much) or is corrupt (see corruption).
   * Throws HvError for a packet this ring can never carry: that is a host bug, not guest input.
   */
  tryWriteRaw(
    type: number,
    flags: number,
    transIdLo: number,
    transIdHi: number,
    header: Uint8Array | null,
    payload: Uint8Array,
    payloadStart = 0,
    payloadEnd = payload.length,
  ): boolean {
    if (this.corruption !== null) return false;
    const ring = this.ring;
    const d = ring.dataSize;
    const headerLength = header === null ? 0 : header.length;
    const payloadLength = payloadEnd - payloadStart;
    if ((headerLength & 7) !== 0) throw new HvError('HV_ERR_RING_PACKET', `extended header of ${headerLength} bytes is not a multiple of 8`);
    const offset8 = (PACKET_DESCRIPTOR_SIZE + headerLength) >>> 3;
    const packetLength = (offset8 << 3) + ((payloadLength + 7) & ~7);
    if (payloadLength < 0 || packetLength > ring.maxPacketLength) {
      throw new HvError('HV_ERR_RING_PACKET_TOO_LARGE', `packet of ${packetLength} bytes exceeds this ring's maximum of ${ring.maxPacketLength}`);
    }
    const total = packetLength + PACKET_TRAILER_SIZE;
    if (ring.bytesFree(this.pos, this.readIndex) <= total) {
      const r = ring.readIndex();
      if (!ring.isValidIndex(r)) {
        this.corruption = corrupt(badIndexReason('read_index', r, d));
        return false;
      }
      this.readIndex = r;
      if (ring.bytesFree(this.pos, r) <= total) {
        this.neededBytes = total;
        return false;
      }
    }

    const u32 = ring.mem.u32;
    const u8 = ring.mem.u8;
    const base = ring.dataGpa;
    const start = this.pos;
    // Descriptor as two qwords: a 16-byte descriptor may be split across the end (Linux hv_copyto_ringbuffer wraps).
    let q = (base + start) >>> 2;
    u32[q] = (type & 0xffff) | (offset8 << 16);
    u32[q + 1] = (packetLength >>> 3) | ((flags & 0xffff) << 16);
    let p = start + 8 === d ? 0 : start + 8;
    q = (base + p) >>> 2;
    u32[q] = transIdLo >>> 0;
    u32[q + 1] = transIdHi >>> 0;
    p = p + 8 === d ? 0 : p + 8;
    if (headerLength !== 0) p = this.copyIn(header!, 0, headerLength, p);
    if (payloadLength !== 0) {
      p = this.copyIn(payload, payloadStart, payloadEnd, p);
      const pad = (8 - (payloadLength & 7)) & 7;
      // Padding never wraps: d is a multiple of 8 and p is inside the last qword of the payload.
      if (pad !== 0) u8.fill(0, base + p, base + p + pad);
      p += pad;
      if (p === d) p = 0;
    }
    q = (base + p) >>> 2;
    u32[q] = 0;
    u32[q + 1] = start;
    p += PACKET_TRAILER_SIZE;
    this.pos = p >= d ? p - d : p;
    this.packets++;
    return true;
  }

  /** Copies src[from, to) into the data area at ring offset p, wrapping; returns the next offset. */
  private copyIn(src: Uint8Array, from: number, to: number, p: number): number {
    const ring = this.ring;
    const u8 = ring.mem.u8;
    const d = ring.dataSize;
    const n = to - from;
    const first = d - p;
    if (n < first) {
      u8.set(from === 0 && to === src.length ? src : src.subarray(from, to), ring.dataGpa + p);
      return p + n;
    }
    u8.set(src.subarray(from, from + first), ring.dataGpa + p);
    if (n > first) u8.set(src.subarray(from + first, to), ring.dataGpa);
    return n - first;
  }

  /**
   * Publishes the batch: one store of write_index after all packet bytes (ordering pair C), then
   * clears pending_send_sz if this producer had set it (pair D). Returns true when the consumer
   * must be signalled: its interrupt_mask is clear and read_index equals write_index as it was at
   * the start of the batch, i.e. the ring went from empty to non-empty (Linux hv_signal_on_write).
   */
  commit(): boolean {
    if (this.pos === this.start) return false;
    const ring = this.ring;
    const i32 = ring.mem.i32;
    Atomics.store(i32, ring.writeIndexWord, this.pos);
    if (Atomics.load(i32, ring.pendingSendWord) !== 0) Atomics.store(i32, ring.pendingSendWord, 0);
    const start = this.start;
    this.start = this.pos;
    this.packets = 0;
    if (Atomics.load(i32, ring.interruptMaskWord) !== 0) return false;
    return Atomics.load(i32, ring.readIndexWord) >>> 0 === start;
  }
}
