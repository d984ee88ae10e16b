// One block-device interface for every storage path, so the same guest workload runs on ATA PIO,
// ATA DMA and storvsc. Buffers are guest-physical addresses; sectors are 512 bytes.
//
// Synchronous calls: `read`/`write`/`flush` return 0 on success or a negative BlockError.
// Queued calls (paths that can keep several requests in flight): `submit` starts a request and
// returns a tag ≥ 0 (or a negative BlockError, BLOCK_QUEUE_FULL when no slot is free); `poll`
// reaps completions into the caller's arrays and returns how many it reaped. A path that cannot
// queue reports queueDepth() == 1 and completes each submit before returning.

export const BLOCK_OK: i32 = 0;
export const BLOCK_IO_ERROR: i32 = -1;
export const BLOCK_OUT_OF_RANGE: i32 = -2;
export const BLOCK_BAD_REQUEST: i32 = -3;
export const BLOCK_QUEUE_FULL: i32 = -4;
export const BLOCK_NOT_READY: i32 = -5;

export const SECTOR_SIZE: u32 = 512;

export abstract class BlockDevice {
  /** Capacity in 512-byte sectors. */
  abstract sectorCount(): u64;
  /** Requests this path can keep in flight at once. */
  abstract queueDepth(): u32;
  /** Largest transfer in sectors one request may carry. */
  abstract maxSectorsPerRequest(): u32;
  abstract read(lba: u64, sectors: u32, buffer: usize): i32;
  abstract write(lba: u64, sectors: u32, buffer: usize): i32;
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
