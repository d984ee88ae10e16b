// VMBus ring buffer layout (Linux drivers/hv/ring_buffer.c; Linux include/linux/hyperv.h,
// struct hv_ring_buffer and struct vmpacket_descriptor; OpenVMM vm/devices/vmbus/vmbus_ring).
// Shared by the host ring (vmbus/ring/) and the guest ring (child-sdk/vmbus/ring.ts).

/** Size of the control page that precedes the data area of every ring. */
export const RING_CONTROL_SIZE = 4096;

// Control page words (byte offsets).
export const RING_WRITE_INDEX = 0; // u32, written by the producer
export const RING_READ_INDEX = 4; // u32, written by the consumer
export const RING_INTERRUPT_MASK = 8; // u32, written by the consumer: non-zero = "do not signal me"
export const RING_PENDING_SEND_SZ = 12; // u32, written by a blocked producer (0 = not blocked)
export const RING_FEATURE_BITS = 64; // u32, written by the producer at init

/** feature_bits bit 0: the producer sets pending_send_sz when blocked (FEAT_PENDING_SEND_SZ). */
export const RING_FEAT_PENDING_SEND_SZ = 1;

/** struct vmpacket_descriptor: type u16 @0, offset8 u16 @2, len8 u16 @4, flags u16 @6, trans_id u64 @8. */
export const PACKET_DESCRIPTOR_SIZE = 16;
export const PACKET_DESC_TYPE = 0;
export const PACKET_DESC_OFFSET8 = 2;
export const PACKET_DESC_LEN8 = 4;
export const PACKET_DESC_FLAGS = 6;
export const PACKET_DESC_TRANS_ID = 8;
/** u64 after every packet: (ring offset where the packet started) << 32. */
export const PACKET_TRAILER_SIZE = 8;

/** VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED: the receiver answers with VM_PKT_COMP. */
export const VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED = 1;

/** enum vmbus_packet_type (Linux include/linux/hyperv.h). */
export enum VmbusPacketType {
  Invalid = 0x0,
  Synch = 0x1,
  AddTransferPageSet = 0x2,
  RemoveTransferPageSet = 0x3,
  EstablishGpadl = 0x4,
  TeardownGpadl = 0x5,
  DataInband = 0x6, // VM_PKT_DATA_INBAND
  DataUsingTransferPages = 0x7, // VM_PKT_DATA_USING_XFER_PAGES
  DataUsingGpadl = 0x8,
  DataUsingGpaDirect = 0x9, // VM_PKT_DATA_USING_GPA_DIRECT
  CancelRequest = 0xa,
  Completion = 0xb, // VM_PKT_COMP
  DataUsingAdditionalPacket = 0xc,
  AdditionalData = 0xd,
}

// GPA-direct extended header (type 9), @16 from the descriptor: reserved u32, range_count u32,
// then per range: byte_count u32, byte_offset u32, PFN u64 × ceil((byte_offset + byte_count) / 4096).
export const GPA_DIRECT_RANGE_COUNT = 20;
export const GPA_DIRECT_RANGES = 24;
// Transfer-page extended header (type 7), @16: xfer_pageset_id u16, sender_owns_set u8,
// reserved u8, range_count u32 @20, then per range byte_count u32, byte_offset u32.
export const XFER_PAGE_SET_ID = 16;
export const XFER_SENDER_OWNS_SET = 18;
export const XFER_RANGE_COUNT = 20;
export const XFER_RANGES = 24;
/** Minimum offset8 of GPA-direct and transfer-page packets (OpenVMM vmbus_ring validation). */
export const PACKET_MIN_OFFSET8_WITH_RANGES = 3;
