/**
 * One offered channel as the server tracks it. Life cycle (Linux drivers/hv/channel_mgmt.c):
 * offered → (OPENCHANNEL ok) open → (CLOSECHANNEL) offered …; rescind moves any state to
 * rescinded, closing first when open; RELID_RELEASED (or UNLOAD) then frees the relid.
 */
import type { ChannelOfferSpec } from './server-types.ts';

export type ChannelState = 'offered' | 'open' | 'rescinded';

export interface ChannelRecord {
  relid: number;
  connectionId: number;
  spec: ChannelOfferSpec;
  subChannelIndex: number;
  primaryRelid: number;
  state: ChannelState;
  /** OFFERCHANNEL has been sent in this connection (after REQUESTOFFERS). */
  offeredToGuest: boolean;
  /** While open: the ring GPADL and where host → guest events go. */
  ringGpadl: number;
  targetVp: number;
  openId: number;
  /** While open: where the host → guest ring starts in the GPADL, and OPENCHANNEL userdata (kept for a saved state). */
  downstreamPageOffset: number;
  userData: Uint8Array | null;
  /** Next sub_channel_index to hand out (primary channels only). */
  nextSubChannelIndex: number;
}

/** QEMU uses 16 + relid for the per-channel signalling connection; any unique value works. */
export const CHANNEL_CONNECTION_ID_BASE = 16;
