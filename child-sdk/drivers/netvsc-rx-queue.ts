// The frames of received transfer-page packets that netvsc's receive() has not taken yet: a ring
// of RX_QUEUE 16-byte entries {offset u32, count u16, tag u16 (channel << 8 | 1 on the last range
// of its packet), trans_id lo u32, hi u32} in pages of its own, so the frame path allocates nothing.
import { pageAllocRun } from "../kernel/pages";
import { RX_QUEUE } from "./netvsc-config";

export class NetvscRxQueue {
  private base: usize = 0;
  private head: u32 = 0;
  /** Entries waiting. */
  count: u32 = 0;

  /** Takes its pages; false when there are none. */
  allocate(): bool {
    this.base = pageAllocRun((RX_QUEUE * 16) >> 12);
    return this.base != 0;
  }

  /** Whether `n` more entries fit. */
  room(n: u32): bool {
    return this.count + n <= RX_QUEUE;
  }

  /** A range of `count` bytes at `offset` in the receive buffer, from channel `q`; `last`: its packet's completion goes with it. */
  push(offset: u32, count: u32, q: u32, last: bool, lo: u32, hi: u32): void {
    const e = this.base + (<usize>((this.head + this.count) % RX_QUEUE) << 4);
    store<u32>(e, offset);
    store<u16>(e, <u16>(count > 0xffff ? 0xffff : count), 4);
    store<u16>(e, <u16>((q << 8) | (last ? 1 : 0)), 6);
    store<u32>(e, lo, 8);
    store<u32>(e, hi, 12);
    this.count++;
  }

  /** The oldest entry's address (valid until the next push). */
  front(): usize {
    return this.base + (<usize>this.head << 4);
  }

  /** Drops the oldest entry. */
  shift(): void {
    this.head = (this.head + 1) % RX_QUEUE;
    this.count--;
  }
}
