// What the network stack needs from a NIC driver: its MAC, sending one frame, and taking the next
// received frame if there is one. Both the NE2000 driver and (later) netvsc implement it.

/** Largest standard frame (1500-byte payload + 14-byte header): every device takes it. */
export const NET_MAX_FRAME: u32 = 1514;
/** Largest jumbo frame (9000-byte payload + 14): what the stack's buffers hold. */
export const NET_MAX_JUMBO_FRAME: u32 = 9014;

export abstract class NetDevice {
  /** Byte `i` (0–5) of the station address. */
  abstract macByte(i: u32): u8;
  /** Sends `length` bytes at `gpa` (14..maxFrame()); false when the card refused. */
  abstract send(gpa: usize, length: u32): bool;
  /** Copies the next received frame to `gpa` (room for NET_MAX_JUMBO_FRAME + 4); its length, or 0 when none. */
  abstract receive(gpa: usize): u32;
  /** Largest frame the device sends and receives now, header included (its MTU + 14). */
  maxFrame(): u32 { return NET_MAX_FRAME; }
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
