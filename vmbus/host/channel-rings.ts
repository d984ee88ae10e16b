/**
 * The two rings of an open channel, built over its ring GPADL (Linux __vmbus_open): pages
 * [0, downstream) hold the guest → host ring, [downstream, n) the host → guest ring, each a
 * 4 KiB control page followed by its data pages. The host accesses a ring as one range of guest
 * physical memory, so the GPADL's pages must be contiguous (what the child SDK and Linux
 * allocate); anything else is refused before the channel opens.
 */
import { PAGE_SIZE, type GuestMemory } from '../../hypervisor/guest-memory.ts';
import { RING_CONTROL_SIZE, VmbusRing } from '../ring/index.ts';
import type { OpenedChannel } from '../server/server-types.ts';

export interface ChannelRings {
  /** Guest → host: the host consumes. */
  inbound: VmbusRing;
  /** Host → guest: the host produces. */
  outbound: VmbusRing;
}

export type ChannelRingsResult = { ok: true; rings: ChannelRings } | { ok: false; reason: string };

/**
 * `restoring`: the rings of a channel that was open when the VM was saved. Their control pages
 * are in guest memory as they were: the producer words are not initialised again (that would clear
 * a pending_send_sz the host had published while waiting for room, and the guest's signal with it).
 */
export function buildChannelRings(mem: GuestMemory, open: OpenedChannel, restoring = false): ChannelRingsResult {
  const pages = open.ringPages;
  const down = open.downstreamPageOffset;
  if (pages.length < 4 || down < 2 || pages.length - down < 2) {
    return { ok: false, reason: `downstream offset ${down} of ${pages.length} pages leaves a ring without a data page` };
  }
  const first = pages[0];
  for (let i = 1; i < pages.length; i++) {
    if (pages[i] !== first + i)
      return { ok: false, reason: `ring GPADL page ${i} (PFN 0x${pages[i].toString(16)}) is not contiguous with PFN 0x${first.toString(16)}` };
  }
  const base = first * PAGE_SIZE;
  if (!mem.contains(base, pages.length * PAGE_SIZE))
    return { ok: false, reason: `ring pages 0x${base.toString(16)}+${pages.length} pages lie outside guest memory` };
  const inbound = VmbusRing.create(mem, base, down * PAGE_SIZE - RING_CONTROL_SIZE);
  const outbound = VmbusRing.create(mem, base + down * PAGE_SIZE, (pages.length - down) * PAGE_SIZE - RING_CONTROL_SIZE);
  if (!(inbound instanceof VmbusRing)) return { ok: false, reason: `inbound ring: ${inbound.reason}` };
  if (!(outbound instanceof VmbusRing)) return { ok: false, reason: `outbound ring: ${outbound.reason}` };
  // The host produces on the outbound ring: advertise FEAT_PENDING_SEND_SZ as QEMU does on its
  // host → guest ring; the inbound ring's control words belong to the guest (producer) and to us
  // only for read_index and interrupt_mask.
  if (!restoring) outbound.initAsProducer();
  return { ok: true, rings: { inbound, outbound } };
}
