/**
 * What a NetVspChannel takes and gives: the packets the framework hands it, the sink its replies
 * go to, its options, its counters, and the receive and send buffers it holds over the guest's
 * GPADLs (netvsp-channel.ts).
 */
import type { GuestMemory } from '../../../hypervisor/guest-memory.ts';
import type { GpadlBuffer } from './gpadl-buffer.ts';
import type { ReceiveSuballocs } from './receive-suballocs.ts';

/** A packet the framework received (payload already copied out of the ring). */
export interface NetVspIncoming {
  kind: 'inband' | 'gpa-direct' | 'completion';
  transactionId: bigint;
  completionRequested: boolean;
  payload: Uint8Array;
  /** GPA-direct: bounds-checked views of the guest's buffer, in order; null when the ranges were refused. */
  gpaSegments?: readonly Uint8Array[] | null;
}

/** Where the channel's packets go (the VMBus ring, through VspChannel). False = no room in the ring. */
export interface NetVspSink {
  complete(transactionId: bigint, payload: Uint8Array): boolean;
  /** VM_PKT_DATA_USING_XFER_PAGES with COMPLETION_REQUESTED. */
  sendTransferPages(transactionId: bigint, header: Uint8Array, payload: Uint8Array): boolean;
  /** VM_PKT_DATA_INBAND without a completion (SEND_INDIRECTION_TABLE). */
  sendInband(payload: Uint8Array): boolean;
}

export interface NetVspChannelOptions {
  memory: GuestMemory;
  mac: Uint8Array;
  /** Allow frames up to 9014 bytes (jumbo, MTU 9000) when the guest's NDIS config asks for it. */
  allowJumbo?: boolean;
  /** The pages of a GPADL the guest created on this channel, or undefined. */
  resolveGpadl(handle: number): readonly number[] | undefined;
  sink: NetVspSink;
  /** A frame the guest transmitted (valid during the call only). */
  onTransmit(frame: Uint8Array, vlanId: number | undefined): void;
  /** Channels this NIC may run, the primary included (1..64; default 1: SUBCHANNEL is refused). */
  maxChannels?: number;
  /** SUBCHANNEL granted `count` sub-channels (after its completion was sent): offer them. */
  onSubChannelsGranted?(count: number): void;
}

export interface NetVspStats {
  nvspMessages: number;
  /** Messages refused: out of order, duplicate, bad version, malformed, bad buffer. */
  refused: number;
  rndisControl: number;
  framesTransmitted: number;
  /** Guest transmissions refused (bad RNDIS, oversize or runt frames, bad section or GPA ranges). */
  transmitErrors: number;
  framesDelivered: number;
  receivePackets: number;
  rxDropNotReady: number;
  /** Frames that came while the VM was paused or being saved (the guest's buffer is left alone). */
  rxDropPaused: number;
  rxDropFiltered: number;
  rxDropNoBuffer: number;
  rxDropTooBig: number;
  rxDropRingFull: number;
  /** Control responses lost because every reserved slot was in flight. */
  controlDropped: number;
  /** Guest completions naming no packet in flight (or one sent on another channel). */
  badCompletions: number;
  /** Frames delivered on a sub-channel (RSS sent them there), a subset of framesDelivered. */
  framesDeliveredOnSubChannels: number;
  /** Frames the guest sent on a sub-channel, a subset of framesTransmitted. */
  framesTransmittedOnSubChannels: number;
  /** Frames whose checksums the host computed because their checksum PPI asked (transmit offload). */
  checksumsOffloaded: number;
}

/** Most RNDIS bytes one SEND_RNDIS_PKT may carry (8 jumbo frames with headers, well under it). */
export const MAX_RNDIS_TRANSFER_BYTES = 128 * 1024;
/** PACKET_MSGs accepted in one transmission (INITIALIZE_CMPLT MaxPacketsPerMessage is 8). */
export const MAX_PACKETS_PER_MESSAGE = 8;

/** Counters all zero (a channel's start). */
export function emptyNetVspStats(): NetVspStats {
  return {
    nvspMessages: 0,
    refused: 0,
    rndisControl: 0,
    framesTransmitted: 0,
    transmitErrors: 0,
    framesDelivered: 0,
    receivePackets: 0,
    rxDropNotReady: 0,
    rxDropPaused: 0,
    rxDropFiltered: 0,
    rxDropNoBuffer: 0,
    rxDropTooBig: 0,
    rxDropRingFull: 0,
    controlDropped: 0,
    badCompletions: 0,
    framesDeliveredOnSubChannels: 0,
    framesTransmittedOnSubChannels: 0,
    checksumsOffloaded: 0,
  };
}

/** The receive buffer the guest gave (SEND_RECV_BUF) with the geometry the host chose for it. */
export interface ReceiveBufferState {
  gpadl: number;
  pages: readonly number[];
  buffer: GpadlBuffer;
  /** The guest's buffer id, echoed as the transfer-page set id. */
  id: number;
  subAllocSize: number;
  slots: ReceiveSuballocs;
}

/** The send buffer the guest gave (SEND_SEND_BUF), in host-sized sections. */
export interface SendBufferState {
  gpadl: number;
  pages: readonly number[];
  buffer: GpadlBuffer;
  sections: number;
}
