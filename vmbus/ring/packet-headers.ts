import { PAGE_SIZE } from '../../hypervisor/guest-memory.ts';
import {
  GPA_DIRECT_RANGE_COUNT,
  GPA_DIRECT_RANGES,
  PACKET_DESCRIPTOR_SIZE,
  XFER_PAGE_SET_ID,
  XFER_RANGE_COUNT,
  XFER_RANGES,
  XFER_SENDER_OWNS_SET,
} from './ring-layout.ts';
import type { ReceivedPacket } from './received-packet.ts';

// Extended headers of GPA-direct (type 9) and transfer-page (type 7) packets
// (Linux include/linux/hyperv.h, struct vmpacket_descriptor, struct vmbus_packet_mpb_array,
// struct gpa_range, struct vmtransfer_page_packet_header). Encoders return the bytes that follow the
// 16-byte descriptor, for RingWriteBatch.tryWrite({ header }); decoders read a ReceivedPacket's
// private copy and report a malformed header as a value.

/** struct gpa_range: a byte range over guest pages; PFNs are numbers (exact below 2^52). */
export interface GpaRange {
  byteCount: number;
  /** Offset into the first page, < 4096. */
  byteOffset: number;
  pfns: number[];
}

export interface TransferPageRange {
  byteCount: number;
  /** Offset into the transfer page set (the receive-buffer GPADL). */
  byteOffset: number;
}

export interface TransferPageHeader {
  transferPageSetId: number;
  senderOwnsSet: boolean;
  ranges: TransferPageRange[];
}

export interface MalformedPacket {
  readonly kind: 'malformed';
  readonly reason: string;
}

/** PFNs at or above this are not exact as numbers and beyond any 4 GiB guest anyway. */
const MAX_PFN = 2 ** 52;

/** PFNs a range covers: ceil((byte_offset + byte_count) / 4096). */
export function gpaRangePageCount(byteOffset: number, byteCount: number): number {
  return Math.ceil((byteOffset + byteCount) / PAGE_SIZE);
}

/** Header of a VM_PKT_DATA_USING_GPA_DIRECT packet: reserved u32, range_count u32, ranges. */
export function encodeGpaDirectHeader(ranges: readonly GpaRange[]): Uint8Array {
  let length = GPA_DIRECT_RANGES - PACKET_DESCRIPTOR_SIZE;
  for (const r of ranges) length += 8 + 8 * r.pfns.length;
  const bytes = new Uint8Array(length);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(GPA_DIRECT_RANGE_COUNT - PACKET_DESCRIPTOR_SIZE, ranges.length, true);
  let o = GPA_DIRECT_RANGES - PACKET_DESCRIPTOR_SIZE;
  for (const r of ranges) {
    dv.setUint32(o, r.byteCount, true);
    dv.setUint32(o + 4, r.byteOffset, true);
    o += 8;
    for (const pfn of r.pfns) {
      dv.setUint32(o, pfn % 0x1_0000_0000, true);
      dv.setUint32(o + 4, Math.floor(pfn / 0x1_0000_0000), true);
      o += 8;
    }
  }
  return bytes;
}

/**
 * Ranges of a received GPA-direct packet: range_count ≥ 1, byte_offset < 4096 (QEMU), each
 * range's PFN list inside the extended header. Whether the pages belong to the guest is the
 * caller's check.
 */
export function decodeGpaDirectHeader(packet: ReceivedPacket): GpaRange[] | MalformedPacket {
  const end = packet.offset8 << 3;
  if (end < GPA_DIRECT_RANGES) return malformed(`GPA-direct header of ${end - PACKET_DESCRIPTOR_SIZE} bytes is too short`);
  const dv = packet.view;
  const count = dv.getUint32(GPA_DIRECT_RANGE_COUNT, true);
  if (count === 0) return malformed('GPA-direct packet with range_count 0');
  // Each range takes at least 8 bytes: bounds the loop before any allocation.
  if (count > (end - GPA_DIRECT_RANGES) / 8) return malformed(`range_count ${count} does not fit the header`);
  const ranges: GpaRange[] = [];
  let o = GPA_DIRECT_RANGES;
  for (let i = 0; i < count; i++) {
    if (o + 8 > end) return malformed(`range ${i} overruns the header`);
    const byteCount = dv.getUint32(o, true);
    const byteOffset = dv.getUint32(o + 4, true);
    if (byteOffset >= PAGE_SIZE) return malformed(`range ${i} byte_offset ${byteOffset} ≥ page size`);
    const n = gpaRangePageCount(byteOffset, byteCount);
    o += 8;
    if (o + 8 * n > end) return malformed(`range ${i} needs ${n} PFNs beyond the header`);
    const pfns = new Array<number>(n);
    for (let k = 0; k < n; k++, o += 8) {
      const pfn = dv.getUint32(o, true) + dv.getUint32(o + 4, true) * 0x1_0000_0000;
      if (pfn >= MAX_PFN) return malformed(`range ${i} PFN ${k} out of range`);
      pfns[k] = pfn;
    }
    ranges.push({ byteCount, byteOffset, pfns });
  }
  return ranges;
}

/** Header of a VM_PKT_DATA_USING_XFER_PAGES packet (struct vmtransfer_page_packet_header). */
export function encodeTransferPageHeader(header: TransferPageHeader): Uint8Array {
  const bytes = new Uint8Array(XFER_RANGES - PACKET_DESCRIPTOR_SIZE + 8 * header.ranges.length);
  const dv = new DataView(bytes.buffer);
  dv.setUint16(XFER_PAGE_SET_ID - PACKET_DESCRIPTOR_SIZE, header.transferPageSetId, true);
  dv.setUint8(XFER_SENDER_OWNS_SET - PACKET_DESCRIPTOR_SIZE, header.senderOwnsSet ? 1 : 0);
  dv.setUint32(XFER_RANGE_COUNT - PACKET_DESCRIPTOR_SIZE, header.ranges.length, true);
  let o = XFER_RANGES - PACKET_DESCRIPTOR_SIZE;
  for (const r of header.ranges) {
    dv.setUint32(o, r.byteCount, true);
    dv.setUint32(o + 4, r.byteOffset, true);
    o += 8;
  }
  return bytes;
}

export function decodeTransferPageHeader(packet: ReceivedPacket): TransferPageHeader | MalformedPacket {
  const end = packet.offset8 << 3;
  if (end < XFER_RANGES) return malformed(`transfer-page header of ${end - PACKET_DESCRIPTOR_SIZE} bytes is too short`);
  const dv = packet.view;
  const count = dv.getUint32(XFER_RANGE_COUNT, true);
  if (count > (end - XFER_RANGES) / 8) return malformed(`range_count ${count} does not fit the header`);
  const ranges: TransferPageRange[] = new Array(count);
  for (let i = 0, o = XFER_RANGES; i < count; i++, o += 8) {
    ranges[i] = { byteCount: dv.getUint32(o, true), byteOffset: dv.getUint32(o + 4, true) };
  }
  return {
    transferPageSetId: dv.getUint16(XFER_PAGE_SET_ID, true),
    senderOwnsSet: dv.getUint8(XFER_SENDER_OWNS_SET) !== 0,
    ranges,
  };
}

function malformed(reason: string): MalformedPacket {
  return { kind: 'malformed', reason };
}
