// netvsc's sizes, waits and transaction tags (netvsc.ts), and why its attach fails.
/** Channels at most (the primary included); each costs its rings (32 pages). */
export const NETVSC_MAX_QUEUES: u32 = 4;

/** Ring sizes (control page included): Linux's default netvsc_ring_bytes is far larger; these hold ~1000 packets each way. */
export const SEND_RING_BYTES: u32 = 16 * 4096;
export const RECV_RING_BYTES: u32 = 16 * 4096;
/**
 * Receive buffer: 512 pages (2 MiB) hold 225 sub-allocations of 9306 bytes when the host agreed
 * jumbo frames (16 of them its control slots), 1161 of 1806 bytes when it did not. A slot holds
 * one frame whatever its size, so jumbo slots need the larger buffer to keep small frames flowing.
 */
export const RX_PAGES: u32 = 512;
/** Send buffer: 12 pages hold 8 sections of 6144 bytes. */
export const TX_PAGES: u32 = 12;
export const MAX_SECTIONS: u32 = 32;
/** Frames of received transfer-page packets not yet taken (≥ the data slots of the receive buffer). */
export const RX_QUEUE: u32 = 2048;
/** A jumbo frame's PACKET_MSG, sent by GPA direct (44 + 9014 bytes in 3 contiguous pages); 8 such buffers. */
export const JUMBO_PAGES: u32 = 3;
export const JUMBO_BUFFERS: u32 = 8;
/** Largest host packet read (a transfer-page packet of 375 ranges is ~3.1 KiB). */
export const PACKET_BYTES: u32 = 8192;
/** Transaction-id tags (trans_id high word) of what this driver sends. */
export const TAG_INIT: u32 = 0x6e657469; // "itne": NVSP initialization messages
export const TAG_DATA: u32 = 0x7478; // a data PACKET_MSG in section trans_id_lo
export const TAG_CONTROL: u32 = 0x6374; // an RNDIS control message in section trans_id_lo
export const TAG_JUMBO: u32 = 0x6a6d; // the jumbo PACKET_MSG sent by GPA direct
/** How long one waitStep spins on the ring (100 ns units): 50 µs, so ping's 20 000 steps last ~1 s. */
export const WAIT_STEP_100NS: u64 = 500;
/** How long initialization waits for each host answer: 2 s. */
export const INIT_WAIT_100NS: u64 = 20_000_000;

/** Why attach failed (NetvscNic.error). */
export enum NetvscError {
  None = 0,
  NoOffer = 1,
  OutOfPages = 2,
  NoVersion = 3,
  BufferRefused = 4,
  RndisFailed = 5,
  Timeout = 6,
}
