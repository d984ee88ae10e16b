/**
 * Serving a channel's rings on a root thread other than the one that runs the VMBus host (a VSP's
 * queue thread, one per sub-channel, as Hyper-V and OpenVMM serve each storage sub-channel on
 * its own CPU). What crosses to that thread: the partition's two shared buffers, where the two
 * rings lie in guest memory, and a doorbell of the control buffer that the guest's signals on the
 * channel's connection ring instead of the VMBus host's (PortTable.routeEvents). The host keeps
 * the channel itself (state, saved state, close); while the rings are served elsewhere its own
 * VspChannel neither reads nor writes them (VspChannel.servedElsewhere).
 */
import type { PartitionShare } from '../../hypervisor/partition-handle.ts';
import { rootDoorbell } from '../../hypervisor/ports.ts';
import type { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { VmbusRing } from '../ring/index.ts';
import type { ChannelRings } from './channel-rings.ts';

/** Where the rings are and whom to signal: plain data, posted to the serving thread. */
export interface OffloadedChannelGeometry {
  relid: number;
  /** The guest's connection for this channel (its HvCallSignalEvent names it). */
  connectionId: number;
  targetVp: number;
  subChannelIndex: number;
  primaryRelid: number;
  inboundControlGpa: number;
  inboundDataSize: number;
  outboundControlGpa: number;
  outboundDataSize: number;
  /** The root doorbell (index) the guest's signals now ring. */
  doorbell: number;
  /** Its word in the control buffer's Int32Array. */
  doorbellWord: number;
}

/** Given by the VMBus host for an open channel (VspChannel.offloadAccess). */
export interface ChannelOffloadAccess {
  share: PartitionShare;
  /** Claims a doorbell for the channel (nothing routed yet); the geometry to post, or null when none is free. */
  claim(): OffloadedChannelGeometry | null;
  /** The guest's signals on the channel's connection ring the claimed doorbell from now on. */
  route(): boolean;
  /** Back to the VMBus host's doorbell (then serve the channel once: a signal may have raced the change). */
  unroute(): void;
  /** Unroutes and gives the doorbell back. */
  release(): void;
}

/** The rings again, on the serving thread, over the same guest pages (checked as at the open). */
export function offloadedRings(mem: GuestMemory, g: OffloadedChannelGeometry): ChannelRings {
  const inbound = VmbusRing.create(mem, g.inboundControlGpa, g.inboundDataSize);
  const outbound = VmbusRing.create(mem, g.outboundControlGpa, g.outboundDataSize);
  if (!(inbound instanceof VmbusRing) || !(outbound instanceof VmbusRing)) throw new Error(`relid ${g.relid}: the rings do not fit guest memory`);
  return { inbound, outbound };
}

export function doorbellWord(index: number): number {
  return rootDoorbell(index) >> 2;
}
