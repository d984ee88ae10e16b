/**
 * The receive buffer's sub-allocations (OpenVMM netvsp rx_bufs.rs): equal slots from offset 0, the
 * first `reserved` kept for control messages (RNDIS completions, status indications), the rest for
 * frames. A transfer-page packet holds a chain of slots and is identified by its first slot's
 * index (its transaction id, as OpenVMM does); the guest's completion frees the whole chain. The
 * guest cannot make the host hold more than the buffer: when no slot is free, the frame is
 * dropped and counted.
 */
export class ReceiveSuballocs {
  private readonly freeData: number[] = [];
  private readonly freeControl: number[] = [];
  /** First slot → every slot of that packet. */
  private readonly inFlight = new Map<number, number[]>();

  constructor(
    readonly count: number,
    readonly reserved: number,
  ) {
    for (let i = count - 1; i >= reserved; i--) this.freeData.push(i);
    for (let i = Math.min(reserved, count) - 1; i >= 0; i--) this.freeControl.push(i);
  }

  get freeDataSlots(): number {
    return this.freeData.length;
  }

  get freeControlSlots(): number {
    return this.freeControl.length;
  }

  get packetsInFlight(): number {
    return this.inFlight.size;
  }

  /** The packets the guest holds, each as its slots (first = its transaction id), for a saved state. */
  inFlightPackets(): number[][] {
    return [...this.inFlight.values()].map((slots) => slots.slice());
  }

  /**
   * Slots as a saved state left them: `packets` in flight, every other slot free. The caller has
   * checked the packets (checkInFlight); the free lists are rebuilt in the constructor's order.
   */
  static restored(count: number, reserved: number, packets: readonly (readonly number[])[]): ReceiveSuballocs {
    const s = new ReceiveSuballocs(count, reserved);
    const held = new Set(packets.flat());
    for (const list of [s.freeData, s.freeControl]) {
      const keep = list.filter((slot) => !held.has(slot));
      list.length = 0;
      list.push(...keep);
    }
    for (const p of packets) s.inFlight.set(p[0]!, p.slice());
    return s;
  }

  /** Up to `n` data slots for one packet (fewer when short); recorded under the first one. */
  takeData(n: number): number[] {
    const slots: number[] = [];
    while (slots.length < n && this.freeData.length > 0) slots.push(this.freeData.pop()!);
    if (slots.length) this.inFlight.set(slots[0]!, slots);
    return slots;
  }

  takeControl(): number | undefined {
    const s = this.freeControl.pop();
    if (s !== undefined) this.inFlight.set(s, [s]);
    return s;
  }

  /** Returns slots that were taken but could not be sent (the ring was full). */
  giveBack(first: number): void {
    this.complete(first);
  }

  /** The guest completed the packet whose first slot is `first`. False for an unknown id. */
  complete(first: number): boolean {
    const slots = this.inFlight.get(first);
    if (!slots) return false;
    this.inFlight.delete(first);
    for (const s of slots) (s < this.reserved ? this.freeControl : this.freeData).push(s);
    return true;
  }
}

/**
 * Why `packets` cannot be the slots in flight of a buffer of `count` slots with `reserved` control
 * slots, or null: every slot an integer below `count` and held once; a control packet is one
 * control slot, a data packet 1..`maxPerPacket` data slots.
 */
export function checkInFlight(count: number, reserved: number, maxPerPacket: number, packets: readonly (readonly number[])[]): string | null {
  if (packets.length > count) return `${packets.length} packets in flight in ${count} slots`;
  const seen = new Set<number>();
  for (const [i, p] of packets.entries()) {
    if (p.length === 0) return `packet ${i} holds no slot`;
    const control = p[0]! < reserved;
    if (control ? p.length !== 1 : p.length > maxPerPacket) return `packet ${i} holds ${p.length} slots`;
    for (const slot of p) {
      if (!Number.isInteger(slot) || slot < 0 || slot >= count) return `packet ${i}: slot ${slot} is not below ${count}`;
      if (!control && slot < reserved) return `packet ${i}: data in control slot ${slot}`;
      if (seen.has(slot)) return `slot ${slot} is held twice`;
      seen.add(slot);
    }
  }
  return null;
}
