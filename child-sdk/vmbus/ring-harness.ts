// Exports the guest ring to host tests (test/vmbus/ring-vectors.test.ts): one producer-side and
// one consumer-side ring object per instance, driven over a shared memory. Not part of any image.
import { RingBuffer, encodeGpaDirectHeader } from "./ring";

let ring: RingBuffer | null = null;

/** Creates the harness ring over the control page at `controlGpa` and `dataSize` data bytes. 1, or 0 when RingBuffer.isValidLayout refuses the layout. */
export function ringInit(controlGpa: u32, dataSize: u32): i32 {
  if (!RingBuffer.isValidLayout(controlGpa, dataSize)) return 0;
  ring = new RingBuffer(controlGpa, dataSize);
  return 1;
}
/** RingBuffer.initAsProducer: clears pending_send_sz and writes `featureBits` to the control page. */
export function ringInitProducer(featureBits: u32): void { ring!.initAsProducer(featureBits); }
/** RingBuffer.beginWrite: snapshots both indexes and starts a write batch. */
export function writerBegin(): void { ring!.beginWrite(); }
/** RingBuffer.tryWrite with GPA arguments: RING_WRITTEN, RING_FULL, RING_ERR_CORRUPT or RING_ERR_TOO_LARGE. */
export function writerTryWrite(type: u32, flags: u32, lo: u32, hi: u32, header: u32, headerLen: u32, payload: u32, payloadLen: u32): i32 {
  return ring!.tryWrite(type, flags, lo, hi, header, headerLen, payload, payloadLen);
}
/** RingBuffer.commitWrite: publishes write_index; true when the consumer must be signalled. */
export function writerCommit(): bool { return ring!.commitWrite(); }
/** Ring bytes the packet refused with RING_FULL needed (RingBuffer.neededBytes). */
export function writerNeeded(): u32 { return ring!.neededBytes; }
/** Why the write batch found the ring corrupt (RingCorruption, 0 = none). */
export function writerCorruption(): i32 { return ring!.writeCorruption; }
/** RingBuffer.requestSpace: publishes pending_send_sz = `total`; true when the space is already free. */
export function requestSpace(total: u32): bool { return ring!.requestSpace(total); }
/** RingBuffer.beginRead: snapshots both indexes and starts a read batch. */
export function readerBegin(): void { ring!.beginRead(); }
/** RingBuffer.tryRead into `dst` (`capacity` bytes): the packet length, 0 when empty, or RING_ERR_CORRUPT. */
export function readerTryRead(dst: u32, capacity: u32): i32 { return ring!.tryRead(dst, capacity); }
/** RingBuffer.commitRead: publishes read_index; true when a producer blocked on pending_send_sz must be signalled. */
export function readerCommit(): bool { return ring!.commitRead(); }
/** Why the read batch found the ring corrupt (RingCorruption, 0 = none). */
export function readerCorruption(): i32 { return ring!.readCorruption; }
/** RingBuffer.maskInterrupt: sets interrupt_mask (Linux hv_begin_read). */
export function maskInterrupt(): void { ring!.maskInterrupt(); }
/** RingBuffer.unmaskInterrupt: clears interrupt_mask; true when packets arrived meanwhile (Linux hv_end_read). */
export function unmaskInterrupt(): bool { return ring!.unmaskInterrupt(); }
/** encodeGpaDirectHeader at `dst`: the header length, or 0 when the PFN count does not match the range. */
export function gpaDirectHeader(dst: u32, byteCount: u32, byteOffset: u32, pfns: u32, pfnCount: u32): u32 {
  return encodeGpaDirectHeader(dst, byteCount, byteOffset, pfns, pfnCount);
}
