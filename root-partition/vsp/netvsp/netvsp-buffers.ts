/**
 * netvsp's receive and send buffers over the guest's GPADLs: built from SEND_RECV_BUF and
 * SEND_SEND_BUF with the geometry the host chooses (Linux netvsc.c netvsc_init_buf: the guest
 * picks only the size), saved as plain records, and rebuilt from a saved state over guest memory.
 * Every refusal is a sentence (the channel answers FAIL and keeps it as its last error).
 */
import type { GuestMemory } from '../../../hypervisor/guest-memory.ts';
import { GpadlBuffer } from './gpadl-buffer.ts';
import type { ReceiveBufferState, SendBufferState } from './netvsp-channel-types.ts';
import { MAX_NETVSP_BUFFER_BYTES, type NetVspSavedChannel, netvspStateError } from './netvsp-saved-state.ts';
import { RECEIVE_HEADER_ROOM, RECEIVE_TAIL_UNUSABLE, RESERVED_CONTROL_SUBALLOCS, SEND_SECTION_SIZE } from './nvsp-protocol.ts';
import { ReceiveSuballocs } from './receive-suballocs.ts';

type SavedReceive = NonNullable<NetVspSavedChannel['receive']>;
type SavedSend = NonNullable<NetVspSavedChannel['send']>;

/** The receive buffer over GPADL `handle` (its pages, or undefined when there is none on the channel), slots sized for `maxFrameBytes`. */
export function receiveBufferOver(
  memory: GuestMemory,
  handle: number,
  pages: readonly number[] | undefined,
  id: number,
  maxFrameBytes: number,
): ReceiveBufferState | string {
  if (!pages) return `receive buffer: no GPADL ${handle} on this channel`;
  const buffer = GpadlBuffer.over(memory, pages);
  if (!buffer) return `receive buffer: GPADL ${handle} has pages outside guest memory`;
  if (buffer.size > MAX_NETVSP_BUFFER_BYTES) return `receive buffer of ${buffer.size} bytes exceeds ${MAX_NETVSP_BUFFER_BYTES}`;
  const subAllocSize = RECEIVE_HEADER_ROOM + maxFrameBytes + RECEIVE_TAIL_UNUSABLE;
  const count = Math.floor(buffer.size / subAllocSize);
  if (count <= RESERVED_CONTROL_SUBALLOCS) return `receive buffer of ${buffer.size} bytes holds only ${count} sub-allocations`;
  return { gpadl: handle, pages, buffer, id, subAllocSize, slots: new ReceiveSuballocs(count, RESERVED_CONTROL_SUBALLOCS) };
}

/** The send buffer over GPADL `handle`, in SEND_SECTION_SIZE sections. */
export function sendBufferOver(memory: GuestMemory, handle: number, pages: readonly number[] | undefined): SendBufferState | string {
  const buffer = pages && GpadlBuffer.over(memory, pages);
  if (!buffer) return `send buffer: GPADL ${handle} is unknown or outside guest memory`;
  if (buffer.size > MAX_NETVSP_BUFFER_BYTES) return `send buffer of ${buffer.size} bytes exceeds ${MAX_NETVSP_BUFFER_BYTES}`;
  const sections = Math.floor(buffer.size / SEND_SECTION_SIZE);
  if (sections === 0) return `send buffer of ${buffer.size} bytes holds no ${SEND_SECTION_SIZE}-byte section`;
  return { gpadl: handle, pages: pages!, buffer, sections };
}

/** The receive buffer as a saved record: its geometry and the packets in flight with the channel each went out on. */
export function savedReceive(r: ReceiveBufferState, slotChannel: Uint8Array): SavedReceive {
  const inFlight = r.slots.inFlightPackets();
  const inFlightChannels = inFlight.map((p) => slotChannel[p[0]!]!);
  return { gpadl: r.gpadl, id: r.id, subAllocSize: r.subAllocSize, count: r.slots.count, pages: [...r.pages], inFlight, inFlightChannels };
}

export function savedSend(s: SendBufferState): SavedSend {
  return { gpadl: s.gpadl, sections: s.sections, pages: [...s.pages] };
}

/** A saved receive buffer over this VM's memory, with the same slots in flight (throws NETVSP_BAD_SAVED_STATE). */
export function restoredReceive(memory: GuestMemory, r: SavedReceive): { receive: ReceiveBufferState; slotChannel: Uint8Array } {
  const buffer = GpadlBuffer.over(memory, r.pages);
  if (!buffer) throw netvspStateError(`the receive buffer (GPADL ${r.gpadl}) has pages outside guest memory`);
  const slotChannel = new Uint8Array(r.count);
  r.inFlight.forEach((p, i) => (slotChannel[p[0]!] = r.inFlightChannels[i] ?? 0));
  return {
    receive: {
      gpadl: r.gpadl,
      pages: r.pages.slice(),
      buffer,
      id: r.id,
      subAllocSize: r.subAllocSize,
      slots: ReceiveSuballocs.restored(r.count, RESERVED_CONTROL_SUBALLOCS, r.inFlight),
    },
    slotChannel,
  };
}

/** A saved send buffer over this VM's memory (throws NETVSP_BAD_SAVED_STATE). */
export function restoredSend(memory: GuestMemory, s: SavedSend): SendBufferState {
  const buffer = GpadlBuffer.over(memory, s.pages);
  if (!buffer) throw netvspStateError(`the send buffer (GPADL ${s.gpadl}) has pages outside guest memory`);
  return { gpadl: s.gpadl, pages: s.pages.slice(), buffer, sections: s.sections };
}
