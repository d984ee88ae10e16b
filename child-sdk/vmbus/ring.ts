// The VMBus ring buffer, guest side (Linux
// drivers/hv/ring_buffer.c). Same layout and rules as the host's vmbus/ring/: a 4 KiB control page
// then the data area; 16-byte descriptor, 8-byte aligned payload, 8-byte trailer; never full;
// batches publish their index once and report whether the peer must be signalled. The packet path
// allocates nothing: raw loads/stores, memory.copy, atomics on the control words.
import {
  RING_CONTROL_SIZE, RING_WRITE_INDEX, RING_READ_INDEX, RING_INTERRUPT_MASK, RING_PENDING_SEND_SZ,
  RING_FEATURE_BITS, RING_FEAT_PENDING_SEND_SZ, PACKET_DESCRIPTOR_SIZE, PACKET_TRAILER_SIZE,
  VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, VmbusPacketType, PACKET_MIN_OFFSET8_WITH_RANGES,
} from "./ring-layout";

/** tryWrite results. */
export const RING_WRITTEN: i32 = 1;
export const RING_FULL: i32 = 0;
export const RING_ERR_CORRUPT: i32 = -1;
export const RING_ERR_TOO_LARGE: i32 = -2;

/** Why a ring was found corrupt (RingBuffer.writeCorruption / readCorruption). */
export enum RingCorruption {
  None = 0,
  WriteIndex = 1, // write_index ≥ data size or misaligned
  ReadIndex = 2, // read_index ≥ data size or misaligned
  Partial = 3, // fewer bytes than a packet are available
  Offset8 = 4, // offset8 < 2
  Len8 = 5, // len8 < offset8
  Overrun = 6, // the packet is longer than what was written
  TooLarge = 7, // the packet exceeds the caller's buffer
  Flags = 8, // undefined flag bits
  Type = 9, // a packet type this ring does not accept
  RangeHeader = 10, // a GPA-direct / transfer-page packet without a range header
}

/** Smallest data area that can carry a packet: len8 × 8 + 8 (trailer) must stay below d − 8 (OpenVMM). */
export const RING_MIN_DATA_SIZE: u32 = 40;

/**
 * One direction of a channel. The object holds only private cursors; everything shared is in the
 * ring's pages. Create rings at channel open (that allocates once); the packet path does not.
 */
export class RingBuffer {
  readonly control: usize;
  readonly data: usize;
  readonly size: u32;
  /** Largest len8 × 8 a packet may have: packet plus trailer must stay below size − 8. */
  readonly maxPacketLength: u32;
  // producer batch
  private wStart: u32 = 0;
  private wPos: u32 = 0;
  private wRead: u32 = 0;
  /** Ring bytes of the packet that did not fit (for requestSpace). */
  neededBytes: u32 = 0;
  writeCorruption: i32 = RingCorruption.None;
  // consumer batch
  private rStart: u32 = 0;
  private rPos: u32 = 0;
  private rWrite: u32 = 0;
  readCorruption: i32 = RingCorruption.None;

  /** `controlGpa` page-aligned; `dataSize` a multiple of 8, at least RING_MIN_DATA_SIZE (checked by isValidLayout). */
  constructor(controlGpa: usize, dataSize: u32) {
    this.control = controlGpa;
    this.data = controlGpa + RING_CONTROL_SIZE;
    this.size = dataSize;
    const max: u32 = dataSize - 16 - PACKET_TRAILER_SIZE;
    this.maxPacketLength = max < 0xffff * 8 ? max : 0xffff * 8;
  }

  /** True when `controlGpa` is page-aligned and `dataSize` is a multiple of 8 between RING_MIN_DATA_SIZE and 0x7FFFF000 bytes. */
  static isValidLayout(controlGpa: usize, dataSize: u32): bool {
    return (controlGpa & 4095) == 0 && (dataSize & 7) == 0 && dataSize >= RING_MIN_DATA_SIZE && dataSize <= 0x7fff_f000;
  }

  /** Producer-side setup before the channel opens: pending_send_sz 0 and `featureBits` (RING_FEAT_*) advertised in the control page. */
  initAsProducer(featureBits: u32): void {
    atomic.store<u32>(this.control + RING_PENDING_SEND_SZ, 0);
    atomic.store<u32>(this.control + RING_FEATURE_BITS, featureBits);
  }

  @inline writeIndex(): u32 { return atomic.load<u32>(this.control + RING_WRITE_INDEX); }
  @inline readIndex(): u32 { return atomic.load<u32>(this.control + RING_READ_INDEX); }
  @inline isValidIndex(i: u32): bool { return i < this.size && (i & 7) == 0; }
  @inline bytesAvailable(w: u32, r: u32): u32 { return w >= r ? w - r : this.size - r + w; }
  @inline bytesFree(w: u32, r: u32): u32 { return w >= r ? this.size - (w - r) : r - w; }

  // ---------------- producer ----------------

  /** Starts a write batch: snapshots write_index and read_index and checks both (a bad one makes the batch corrupt, see writeCorruption). */
  beginWrite(): void {
    const w = this.writeIndex();
    const r = this.readIndex();
    this.wStart = w;
    this.wPos = w;
    this.wRead = r;
    this.neededBytes = 0;
    this.writeCorruption = RingCorruption.None;
    if (!this.isValidIndex(w)) this.writeCorruption = RingCorruption.WriteIndex;
    else if (!this.isValidIndex(r)) this.writeCorruption = RingCorruption.ReadIndex;
  }

  /**
   * Writes one packet behind the batch cursor: descriptor, `headerLen` bytes of extended header
   * (a multiple of 8) from `header`, `payloadLen` bytes from `payload` zero-padded to 8, trailer.
   * RING_WRITTEN, RING_FULL (neededBytes says how much), RING_ERR_CORRUPT or RING_ERR_TOO_LARGE.
   */
  tryWrite(type: u32, flags: u32, transIdLo: u32, transIdHi: u32, header: usize, headerLen: u32, payload: usize, payloadLen: u32): i32 {
    if (this.writeCorruption != RingCorruption.None) return RING_ERR_CORRUPT;
    const d = this.size;
    if ((headerLen & 7) != 0 || headerLen > this.maxPacketLength || payloadLen > this.maxPacketLength) return RING_ERR_TOO_LARGE;
    const offset8: u32 = (PACKET_DESCRIPTOR_SIZE + headerLen) >> 3;
    const packetLength: u32 = (offset8 << 3) + ((payloadLen + 7) & ~7);
    if (packetLength > this.maxPacketLength) return RING_ERR_TOO_LARGE;
    const total = packetLength + PACKET_TRAILER_SIZE;
    if (this.bytesFree(this.wPos, this.wRead) <= total) {
      const r = this.readIndex();
      if (!this.isValidIndex(r)) {
        this.writeCorruption = RingCorruption.ReadIndex;
        return RING_ERR_CORRUPT;
      }
      this.wRead = r;
      if (this.bytesFree(this.wPos, r) <= total) {
        this.neededBytes = total;
        return RING_FULL;
      }
    }
    const base = this.data;
    const start = this.wPos;
    store<u32>(base + start, (type & 0xffff) | (offset8 << 16));
    store<u32>(base + start, (packetLength >> 3) | ((flags & 0xffff) << 16), 4);
    let p: u32 = start + 8 == d ? 0 : start + 8;
    store<u32>(base + p, transIdLo);
    store<u32>(base + p, transIdHi, 4);
    p = p + 8 == d ? 0 : p + 8;
    if (headerLen != 0) p = this.copyIn(header, headerLen, p);
    if (payloadLen != 0) {
      p = this.copyIn(payload, payloadLen, p);
      const pad = (8 - (payloadLen & 7)) & 7;
      if (pad != 0) memory.fill(base + p, 0, pad); // never wraps: d is a multiple of 8
      p += pad;
      if (p == d) p = 0;
    }
    store<u32>(base + p, 0);
    store<u32>(base + p, start, 4);
    p += PACKET_TRAILER_SIZE;
    this.wPos = p >= d ? p - d : p;
    return RING_WRITTEN;
  }

  private copyIn(src: usize, n: u32, p: u32): u32 {
    const first = this.size - p;
    if (n < first) {
      memory.copy(this.data + p, src, n);
      return p + n;
    }
    memory.copy(this.data + p, src, first);
    if (n > first) memory.copy(this.data, src + first, n - first);
    return n - first;
  }

  /**
   * Publishes write_index once (after all packet bytes: ordering pair C), clears pending_send_sz
   * if set (pair D). True when the consumer must be signalled: its interrupt_mask is clear and
   * read_index equals the write index at the start of the batch (Linux hv_signal_on_write).
   */
  commitWrite(): bool {
    const start = this.wStart;
    const pos = this.wPos;
    if (pos == start) return false;
    atomic.store<u32>(this.control + RING_WRITE_INDEX, pos);
    if (atomic.load<u32>(this.control + RING_PENDING_SEND_SZ) != 0) atomic.store<u32>(this.control + RING_PENDING_SEND_SZ, 0);
    this.wStart = pos;
    if (atomic.load<u32>(this.control + RING_INTERRUPT_MASK) != 0) return false;
    return this.readIndex() == start;
  }

  /** Blocked on `totalBytes`: publish pending_send_sz, re-read read_index (pair A). True = space is there, retry now. */
  requestSpace(totalBytes: u32): bool {
    const needed = (totalBytes + 7) & ~7;
    atomic.store<u32>(this.control + RING_PENDING_SEND_SZ, needed);
    const r = this.readIndex();
    const w = this.writeIndex();
    if (!this.isValidIndex(r) || !this.isValidIndex(w)) return false;
    if (this.bytesFree(w, r) > needed) {
      atomic.store<u32>(this.control + RING_PENDING_SEND_SZ, 0);
      return true;
    }
    return false;
  }

  // ---------------- consumer ----------------

  /** Starts a read batch: snapshots read_index and write_index and checks both (a bad one makes the batch corrupt, see readCorruption). */
  beginRead(): void {
    const w = this.writeIndex();
    const r = this.readIndex();
    this.rStart = r;
    this.rPos = r;
    this.rWrite = w;
    this.readCorruption = RingCorruption.None;
    if (!this.isValidIndex(r)) this.readCorruption = RingCorruption.ReadIndex;
    else if (!this.isValidIndex(w)) this.readCorruption = RingCorruption.WriteIndex;
  }

  /**
   * Copies the next packet (descriptor included, len8 × 8 bytes, no trailer) to `dst` and
   * validates the copy. Returns its length, 0 when the ring is empty, RING_ERR_CORRUPT (see
   * readCorruption; sticky for the batch).
   */
  tryRead(dst: usize, capacity: u32): i32 {
    if (this.readCorruption != RingCorruption.None) return RING_ERR_CORRUPT;
    const d = this.size;
    let avail = this.bytesAvailable(this.rWrite, this.rPos);
    if (avail == 0) {
      const w = this.writeIndex();
      if (!this.isValidIndex(w)) return this.fail(RingCorruption.WriteIndex);
      this.rWrite = w;
      avail = this.bytesAvailable(w, this.rPos);
      if (avail == 0) return 0;
    }
    if (avail < <u32>(PACKET_DESCRIPTOR_SIZE + PACKET_TRAILER_SIZE)) return this.fail(RingCorruption.Partial);
    if (capacity < <u32>PACKET_DESCRIPTOR_SIZE) return this.fail(RingCorruption.TooLarge);
    const base = this.data;
    const start = this.rPos;
    store<u64>(dst, load<u64>(base + start));
    let p: u32 = start + 8 == d ? 0 : start + 8;
    store<u64>(dst, load<u64>(base + p), 8);
    p = p + 8 == d ? 0 : p + 8;
    const word0 = load<u32>(dst);
    const word1 = load<u32>(dst, 4);
    const type = word0 & 0xffff;
    const offset8 = word0 >> 16;
    const len8 = word1 & 0xffff;
    const flags = word1 >> 16;
    const length = len8 << 3;
    if (offset8 < 2) return this.fail(RingCorruption.Offset8);
    if (len8 < offset8) return this.fail(RingCorruption.Len8);
    if (length + PACKET_TRAILER_SIZE > avail) return this.fail(RingCorruption.Overrun);
    if (length > capacity) return this.fail(RingCorruption.TooLarge);
    const body = length - PACKET_DESCRIPTOR_SIZE;
    if (body != 0) {
      const first = body < d - p ? body : d - p;
      memory.copy(dst + PACKET_DESCRIPTOR_SIZE, base + p, first);
      if (body > first) memory.copy(dst + PACKET_DESCRIPTOR_SIZE + first, base, body - first);
    }
    if ((flags & ~VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED) != 0) return this.fail(RingCorruption.Flags);
    if (type == VmbusPacketType.DataUsingTransferPages || type == VmbusPacketType.DataUsingGpaDirect) {
      if (offset8 < <u32>PACKET_MIN_OFFSET8_WITH_RANGES) return this.fail(RingCorruption.RangeHeader);
    } else if (type != VmbusPacketType.DataInband && type != VmbusPacketType.Completion) {
      return this.fail(RingCorruption.Type);
    }
    const next = start + length + PACKET_TRAILER_SIZE;
    this.rPos = next >= d ? next - d : next;
    return <i32>length;
  }

  private fail(reason: RingCorruption): i32 {
    this.readCorruption = reason;
    return RING_ERR_CORRUPT;
  }

  /**
   * Publishes read_index once (after the copies: pair B). True when a blocked producer must be
   * woken: FEAT_PENDING_SEND_SZ set, pending_send_sz non-zero, free space was not above it before
   * this batch and is now (Linux hv_pkt_iter_close).
   */
  commitRead(): bool {
    const start = this.rStart;
    const pos = this.rPos;
    if (pos == start) return false;
    atomic.store<u32>(this.control + RING_READ_INDEX, pos);
    this.rStart = pos;
    if ((atomic.load<u32>(this.control + RING_FEATURE_BITS) & RING_FEAT_PENDING_SEND_SZ) == 0) return false;
    const pending = atomic.load<u32>(this.control + RING_PENDING_SEND_SZ) & ~7;
    if (pending == 0) return false;
    const w = this.writeIndex();
    if (!this.isValidIndex(w)) return false;
    return this.bytesFree(w, start) <= pending && this.bytesFree(w, pos) > pending;
  }

  /** Linux hv_begin_read: the producer need not signal while this consumer drains. */
  maskInterrupt(): void {
    atomic.store<u32>(this.control + RING_INTERRUPT_MASK, 1);
  }

  /** Linux hv_end_read: unmask, then re-check; true = packets arrived meanwhile, drain again before sleeping. */
  unmaskInterrupt(): bool {
    atomic.store<u32>(this.control + RING_INTERRUPT_MASK, 0);
    return this.writeIndex() != this.readIndex();
  }
}

// Accessors for a packet copied out by tryRead (struct vmpacket_descriptor).
// @ts-ignore: decorator
@inline export function packetType(p: usize): u32 { return load<u16>(p); }
// @ts-ignore: decorator
@inline export function packetOffset8(p: usize): u32 { return load<u16>(p, 2); }
// @ts-ignore: decorator
@inline export function packetLen8(p: usize): u32 { return load<u16>(p, 4); }
// @ts-ignore: decorator
@inline export function packetFlags(p: usize): u32 { return load<u16>(p, 6); }
// @ts-ignore: decorator
@inline export function packetTransIdLo(p: usize): u32 { return load<u32>(p, 8); }
// @ts-ignore: decorator
@inline export function packetTransIdHi(p: usize): u32 { return load<u32>(p, 12); }

/**
 * Writes the extended header of a VM_PKT_DATA_USING_GPA_DIRECT packet with one range (what Linux
 * storvsc sends, struct vmbus_packet_mpb_array): reserved u32, range_count 1, byte_count,
 * byte_offset, then `pfnCount` u64 PFNs copied from `pfns`. Returns the header length for tryWrite
 * (a multiple of 8), or 0 when pfnCount does not match ceil((byteOffset + byteCount) / 4096) or
 * byteOffset is not inside the first page.
 */
export function encodeGpaDirectHeader(dst: usize, byteCount: u32, byteOffset: u32, pfns: usize, pfnCount: u32): u32 {
  if (byteOffset >= 4096) return 0;
  const span: u64 = <u64>byteOffset + <u64>byteCount;
  if (<u64>pfnCount != (span + 4095) >> 12) return 0;
  store<u32>(dst, 0);
  store<u32>(dst, 1, 4);
  store<u32>(dst, byteCount, 8);
  store<u32>(dst, byteOffset, 12);
  memory.copy(dst + 16, pfns, pfnCount << 3);
  return 16 + (pfnCount << 3);
}
