// One block-device interface for every storage path, so the same guest workload runs on ATA PIO,
// ATA DMA and storvsc. Buffers are guest-physical addresses; sectors are 512 bytes.
//
// Synchronous calls: `read`/`write`/`flush` return 0 on success or a negative BlockError.
// Queued calls (paths that can keep several requests in flight): `submit` starts a request and
// returns a tag ≥ 0 (or a negative BlockError, BLOCK_QUEUE_FULL when no slot is free); `poll`
// reaps completions into the caller's arrays and returns how many it reaped. A path that cannot
// queue reports queueDepth() == 1 and completes each submit before returning.

/** Results of every BlockDevice call: 0 on success, otherwise one of these negative BlockError codes. */
export const BLOCK_OK: i32 = 0;
export const BLOCK_IO_ERROR: i32 = -1;
export const BLOCK_OUT_OF_RANGE: i32 = -2;
export const BLOCK_BAD_REQUEST: i32 = -3;
export const BLOCK_QUEUE_FULL: i32 = -4;
export const BLOCK_NOT_READY: i32 = -5;

/** Bytes per sector on every path (LBAs and sector counts are in these units). */
export const SECTOR_SIZE: u32 = 512;

/** A disk on any storage path: capacity, limits, synchronous I/O and a tagged submit/poll queue over guest-physical buffers. */
export abstract class BlockDevice {
  /** Capacity in 512-byte sectors. */
  abstract sectorCount(): u64;
  /** Requests this path can keep in flight at once. */
  abstract queueDepth(): u32;
  /** Largest transfer in sectors one request may carry. */
  abstract maxSectorsPerRequest(): u32;
  /** Reads `sectors` sectors from `lba` into `buffer` (GPA) and waits for them. BLOCK_OK or a negative BlockError. */
  abstract read(lba: u64, sectors: u32, buffer: usize): i32;
  /** Writes `sectors` sectors from `buffer` (GPA) at `lba` and waits for them. BLOCK_OK or a negative BlockError. */
  abstract write(lba: u64, sectors: u32, buffer: usize): i32;
  /** Waits until previously written data is on the medium (the device's cache flush). BLOCK_OK or a negative BlockError. */
  abstract flush(): i32;
  /** Starts a read (write = false) or write; returns a tag ≥ 0 or a negative BlockError. */
  abstract submit(write: bool, lba: u64, sectors: u32, buffer: usize): i32;
  /**
   * Reaps up to `max` completed requests: tag i goes to tags[i], its status to statuses[i]
   * (both arrays of i32 at the given addresses). With `wait`, blocks (halts) until at least one
   * completes when any is in flight. Returns the number reaped.
   */
  abstract poll(tags: usize, statuses: usize, max: u32, wait: bool): u32;
  /** Requests in flight. */
  abstract inFlight(): u32;
}
