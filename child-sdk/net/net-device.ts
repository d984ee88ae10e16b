// What the network stack needs from a NIC driver: its MAC, sending one frame, and taking the next
// received frame if there is one. Both the NE2000 driver and (later) netvsc implement it.

/** Largest frame the stack handles (1500-byte payload + 14-byte header). */
export const NET_MAX_FRAME: u32 = 1514;

export abstract class NetDevice {
  /** Byte `i` (0–5) of the station address. */
  abstract macByte(i: u32): u8;
  /** Sends `length` bytes at `gpa` (14..1514); false when the card refused. */
  abstract send(gpa: usize, length: u32): bool;
  /** Copies the next received frame to `gpa` (room for NET_MAX_FRAME + 4); its length, or 0 when none. */
  abstract receive(gpa: usize): u32;
  /**
   * One step of waiting for traffic, at the cost of one exit at most (the exit is also where a
   * pending interrupt is delivered). True when frames may be waiting: call receive().
   */
  abstract waitStep(): bool;
  /** Names the device for `ip` ("ne2000 at 0xc100 irq 11"); no newline. */
  abstract describe(): void;
  /** Prints the driver's counters, one line. */
  abstract printCounters(): void;
}
