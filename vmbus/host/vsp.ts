/**
 * The VSP framework's contract (docs/vmbus.md §9): a VSP offers one interface GUID and
 * instance GUID and serves each channel the guest opens on that offer. The framework owns the
 * rings, the signalling and the hostile-guest checks; the VSP sees copied-out packets and answers
 * through its channel. Everything runs on the thread that serves the partition's root inbox.
 */
import type { ChannelOfferSpec } from '../server/server-types.ts';
import type { PacketBatch, VspChannel } from './vsp-channel.ts';

export interface Vsp {
  /** What is offered to the guest (interface and instance GUIDs, flags, user_def). */
  readonly offer: ChannelOfferSpec;
  /**
   * Largest reply (payload bytes plus extended header) the VSP sends for one request. Before
   * each packet is handed over, the framework makes sure the host → guest ring has room for it,
   * so a reply never has to be dropped; without room it stops reading and waits for the guest
   * (pending_send_sz, as in Linux drivers/hv/ring_buffer.c).
   */
  readonly maxReplyBytes: number;
  /** Largest guest → host packet (len8 × 8) accepted; a larger one is a protocol violation. */
  readonly maxPacketBytes: number;
  /** The guest opened a channel; return an NTSTATUS for OPENCHANNEL_RESULT (0 = success). */
  onOpen(channel: VspChannel): number;
  /** Packets arrived. Each is a private copy, valid until the next `batch.next()`. */
  onPackets(channel: VspChannel, batch: PacketBatch): void;
  /** The channel closed (guest CLOSECHANNEL, unload, reset after a protocol violation). */
  onClose?(channel: VspChannel): void;
  /**
   * Saving (VmbusHost.saveState): the VSP stops acting on its own (timers, polls) until
   * `resumeAfterSave`, and answers host callers still waiting with "unavailable". Called once per
   * VSP, before `saveChannel`.
   */
  quiesce?(): void;
  /** The save was not used (it failed and the VM runs on): act again as before `quiesce`. */
  resumeAfterSave?(): void;
  /** An open channel's state in the VSP's own encoding; absent: the channel has no state of its own. */
  saveChannel?(channel: VspChannel): Uint8Array;
  /**
   * Restore instead of onOpen: checks `state` (from saveChannel, or absent when the save had
   * none) against this VSP and returns the step that applies it; throws HvError naming what does
   * not fit, having changed nothing. The steps of all channels run only once every channel and the
   * rest of the state passed its checks; primaries' before their sub-channels'.
   */
  restoreChannel?(channel: VspChannel, state: Uint8Array | undefined): () => void;
}
