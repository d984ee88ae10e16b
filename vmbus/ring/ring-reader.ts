import {
  PACKET_DESCRIPTOR_SIZE,
  PACKET_MIN_OFFSET8_WITH_RANGES,
  PACKET_TRAILER_SIZE,
  RING_FEAT_PENDING_SEND_SZ,
  VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED,
  VmbusPacketType,
} from './ring-layout.ts';
import { badIndexReason, corrupt, type RingCorruption } from './ring-error.ts';
import type { ReceivedPacket } from './received-packet.ts';
import type { VmbusRing } from './vmbus-ring.ts';

/** Below this many bytes a packet body is copied with a word loop: a view per packet costs more (≈ 65 ns each on Node 20). */
const SMALL_COPY = 128;

/**
 * The consumer's batch (Linux hv_pkt_iter_first/next/close, OpenVMM commit_read): packets are
 * copied out behind a private cursor; commit() publishes read_index once and says whether a
 * blocked producer must be signalled. Every index and length is checked against the ring before
 * it is used, so a hostile producer gets a RingCorruption value and the host never reads outside
 * the data area.
 */
export class RingReadBatch {
  private readonly ring: VmbusRing;
  private start = 0;
  private pos = 0;
  /** write_index as last loaded; reloaded only when the batch seems drained (ordering pair C). */
  private writeIndex = 0;
  /** Packets read in this batch. */
  packets = 0;
  corruption: RingCorruption | null = null;

  constructor(ring: VmbusRing) {
    this.ring = ring;
  }

  begin(): void {
    const ring = this.ring;
    const w = ring.writeIndex();
    const r = ring.readIndex();
    this.packets = 0;
    this.corruption = null;
    this.start = this.pos = r;
    this.writeIndex = w;
    if (!ring.isValidIndex(r)) this.corruption = corrupt(badIndexReason('read_index', r, ring.dataSize));
    else if (!ring.isValidIndex(w)) this.corruption = corrupt(badIndexReason('write_index', w, ring.dataSize));
  }

  /** Bytes of unread packets after the cursor, by the last write_index seen. */
  available(): number {
    return this.ring.bytesAvailable(this.writeIndex, this.pos);
  }

  /**
   * Copies the next packet into `into` and validates the private copy. Returns `into`, null
   * when the ring is empty, or the (sticky) corruption.
   */
  tryRead(into: ReceivedPacket): ReceivedPacket | RingCorruption | null {
    if (this.corruption !== null) return this.corruption;
    const ring = this.ring;
    const d = ring.dataSize;
    let avail = ring.bytesAvailable(this.writeIndex, this.pos);
    if (avail === 0) {
      const w = ring.writeIndex();
      if (!ring.isValidIndex(w)) return this.fail(badIndexReason('write_index', w, d));
      this.writeIndex = w;
      avail = ring.bytesAvailable(w, this.pos);
      if (avail === 0) return null;
    }
    if (avail < PACKET_DESCRIPTOR_SIZE + PACKET_TRAILER_SIZE) return this.fail(`${avail} bytes available: less than a packet`);

    const src = ring.mem.u32;
    const dst = into.u32;
    const base = ring.dataGpa;
    const start = this.pos;
    // Descriptor, as two qwords (it may be split across the end of the data area).
    let q = (base + start) >>> 2;
    dst[0] = src[q];
    dst[1] = src[q + 1];
    let p = start + 8 === d ? 0 : start + 8;
    q = (base + p) >>> 2;
    dst[2] = src[q];
    dst[3] = src[q + 1];
    p = p + 8 === d ? 0 : p + 8;

    // Validate the private copy (OpenVMM vmbus_ring: offset8 ≥ 2, len8 ≥ offset8, fits what was written).
    const word0 = dst[0];
    const word1 = dst[1];
    const type = word0 & 0xffff;
    const offset8 = word0 >>> 16;
    const len8 = word1 & 0xffff;
    const flags = word1 >>> 16;
    const length = len8 << 3;
    if (offset8 < 2) return this.fail(`offset8 ${offset8} < 2`);
    if (len8 < offset8) return this.fail(`len8 ${len8} < offset8 ${offset8}`);
    if (length + PACKET_TRAILER_SIZE > avail) return this.fail(`packet of ${length} bytes overruns the ${avail} bytes written`);
    if (length > into.capacity) return this.fail(`packet of ${length} bytes exceeds the ${into.capacity}-byte receive limit`);

    // Body: everything after the descriptor, copied before the type-specific checks read it.
    const body = length - PACKET_DESCRIPTOR_SIZE;
    if (body !== 0) {
      if (body <= SMALL_COPY && p + body <= d) {
        const words = body >>> 2;
        const s = (base + p) >>> 2;
        for (let i = 0; i < words; i++) dst[4 + i] = src[s + i];
      } else {
        const first = Math.min(body, d - p);
        const u8 = ring.mem.u8;
        into.bytes.set(u8.subarray(base + p, base + p + first), PACKET_DESCRIPTOR_SIZE);
        if (body > first) into.bytes.set(u8.subarray(base, base + body - first), PACKET_DESCRIPTOR_SIZE + first);
      }
    }

    if ((flags & ~VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED) !== 0) return this.fail(`flags 0x${flags.toString(16)} has undefined bits`);
    switch (type) {
      case VmbusPacketType.DataInband:
      case VmbusPacketType.Completion:
        break;
      case VmbusPacketType.DataUsingTransferPages:
      case VmbusPacketType.DataUsingGpaDirect:
        if (offset8 < PACKET_MIN_OFFSET8_WITH_RANGES) return this.fail(`type ${type} with offset8 ${offset8} has no range header`);
        break;
      default:
        return this.fail(`packet type ${type} is not accepted`);
    }

    into.type = type;
    into.offset8 = offset8;
    into.len8 = len8;
    into.flags = flags;
    into.transIdLo = dst[2];
    into.transIdHi = dst[3];
    const next = start + length + PACKET_TRAILER_SIZE;
    this.pos = next >= d ? next - d : next;
    this.packets++;
    return into;
  }

  private fail(reason: string): RingCorruption {
    this.corruption = corrupt(reason);
    return this.corruption;
  }

  /**
   * Publishes read_index once, after every packet byte was copied out (ordering pair B), then
   * decides whether the producer must be woken (Linux hv_pkt_iter_close): only with
   * FEAT_PENDING_SEND_SZ, a non-zero pending_send_sz, free space that was not above it before the
   * batch and is above it now.
   */
  commit(): boolean {
    const start = this.start;
    const pos = this.pos;
    if (pos === start) return false;
    const ring = this.ring;
    const i32 = ring.mem.i32;
    Atomics.store(i32, ring.readIndexWord, pos);
    this.start = pos;
    this.packets = 0;
    if ((Atomics.load(i32, ring.featureBitsWord) & RING_FEAT_PENDING_SEND_SZ) === 0) return false;
    // OpenVMM masks the low bits: some peers write ring size − 1.
    const pending = (Atomics.load(i32, ring.pendingSendWord) & ~7) >>> 0;
    if (pending === 0) return false;
    const w = Atomics.load(i32, ring.writeIndexWord) >>> 0;
    if (!ring.isValidIndex(w)) return false;
    return ring.bytesFree(w, start) <= pending && ring.bytesFree(w, pos) > pending;
  }
}
