// Exports the guest ring to host tests (test/vmbus/ring-vectors.test.ts): one producer-side and
// one consumer-side ring object per instance, driven over a shared memory. Not part of any image.
import { RingBuffer, encodeGpaDirectHeader } from "./ring";

let ring: RingBuffer | null = null;

export function ringInit(controlGpa: u32, dataSize: u32): i32 {
  if (!RingBuffer.isValidLayout(controlGpa, dataSize)) return 0;
  ring = new RingBuffer(controlGpa, dataSize);
  return 1;
}
export function ringInitProducer(featureBits: u32): void { ring!.initAsProducer(featureBits); }
export function writerBegin(): void { ring!.beginWrite(); }
export function writerTryWrite(type: u32, flags: u32, lo: u32, hi: u32, header: u32, headerLen: u32, payload: u32, payloadLen: u32): i32 {
  return ring!.tryWrite(type, flags, lo, hi, header, headerLen, payload, payloadLen);
}
export function writerCommit(): bool { return ring!.commitWrite(); }
export function writerNeeded(): u32 { return ring!.neededBytes; }
export function writerCorruption(): i32 { return ring!.writeCorruption; }
export function requestSpace(total: u32): bool { return ring!.requestSpace(total); }
export function readerBegin(): void { ring!.beginRead(); }
export function readerTryRead(dst: u32, capacity: u32): i32 { return ring!.tryRead(dst, capacity); }
export function readerCommit(): bool { return ring!.commitRead(); }
export function readerCorruption(): i32 { return ring!.readCorruption; }
export function maskInterrupt(): void { ring!.maskInterrupt(); }
export function unmaskInterrupt(): bool { return ring!.unmaskInterrupt(); }
export function gpaDirectHeader(dst: u32, byteCount: u32, byteOffset: u32, pfns: u32, pfnCount: u32): u32 {
  return encodeGpaDirectHeader(dst, byteCount, byteOffset, pfns, pfnCount);
}
