/**
 * Types at the edges of the VMBus server state machine: what a VSP offers, what the server
 * reports when a channel opens, and the notifier through which every action leaves the machine.
 */
import type { HvError } from '../../hypervisor/hv-error.ts';

/** What a VSP registers (the fields of OFFERCHANNEL it controls). */
export interface ChannelOfferSpec {
  /** Interface (device class) GUID, e.g. storage ba6163d9-04a1-4d29-b605-72e2ffb1dc7f. */
  interfaceType: string;
  /** Instance GUID; sub-channels share their primary's. */
  interfaceInstance: string;
  mmioMegabytes?: number;
  /** OfferFlags; SERVER_SUPPORTS_... bits as the device protocol needs them. */
  flags?: number;
  /** Up to 120 bytes of OFFERCHANNEL user_def. */
  userDefined?: Uint8Array;
}

/** A channel the guest opened: everything the host needs to build its side of the rings. */
export interface OpenedChannel {
  relid: number;
  /** 0 for a primary channel. */
  subChannelIndex: number;
  /** The relid of the primary channel (itself for a primary). */
  primaryRelid: number;
  /** Connection id the guest signals this channel on (child → parent). */
  connectionId: number;
  /** VP that receives host → guest channel events (OPENCHANNEL.target_vp). */
  targetVp: number;
  openId: number;
  gpadlHandle: number;
  /** Guest page frame numbers of the whole ring GPADL, in order. */
  ringPages: readonly number[];
  /** Pages [0, downstream) are the guest → host ring; [downstream, n) the host → guest ring. */
  downstreamPageOffset: number;
  /** OPENCHANNEL userdata, 120 bytes (a private copy). */
  userData: Uint8Array;
}

/** Actions of the server. All calls are synchronous and must not call back into the server. */
export interface VmbusServerNotifier {
  /** Post a VMBus control message (SynIC type 1, SINT2) to the guest VP `vp`. */
  sendToGuest(message: Uint8Array, vp: number): void;
  /** The guest opened a channel; returns the OPENCHANNEL_RESULT status (0 = success). */
  channelOpened(channel: OpenedChannel): number;
  /** An open channel was closed (by the guest, by rescind, by unload or by reconnect). */
  channelClosed(relid: number): void;
  /** A rescinded channel's relid was released by the guest (or forgotten by unload). */
  channelReleased?(relid: number): void;
  /** A guest message broke the protocol; the server took the defined action already. */
  protocolError(error: HvError): void;
}

/** Limits on what a guest can make the host keep; all bounded. */
export interface VmbusServerLimits {
  /** VPs of the partition: INITIATE_CONTACT.target_vcpu and OPENCHANNEL.target_vp must be below. */
  vpCount: number;
  /** Guest memory size in 4 KiB pages: every PFN must be below. */
  guestPageCount: number;
  maxGpadls: number;
  maxPagesPerGpadl: number;
  /** GPADLs whose header arrived but whose body messages have not all arrived. */
  maxPendingGpadls: number;
  /** Channels (primary and sub) the server will offer at once; relids are 1..this. */
  maxChannels: number;
  /** Newest protocol version to accept (e.g. VmbusVersion.Win10 to behave like QEMU); all by default. */
  maxVersion?: number;
}

export const DEFAULT_LIMITS: Omit<VmbusServerLimits, 'vpCount' | 'guestPageCount'> = {
  maxGpadls: 256,
  maxPagesPerGpadl: 8192, // 32 MiB: larger than the biggest ring or netvsc receive buffer (16 MiB)
  maxPendingGpadls: 4,
  maxChannels: 256,
};
