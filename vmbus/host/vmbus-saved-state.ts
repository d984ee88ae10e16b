/**
 * The encoding of a VMBus host's saved state: field-numbered protobuf with a format number, so a
 * later release can add fields (a reader ignores numbers it does not know) and refuses a format it
 * does not know. Decoding only parses and type-checks; what the values mean is checked by
 * checkServerState and VmbusHost.restoreState before anything is applied.
 */
import protobuf from 'protobufjs';
import { CHANNEL_STATES, savedStateError, type ServerSavedState } from '../server/server-state.ts';

/** The format this build writes and the only one it reads. */
export const VMBUS_SAVED_STATE_FORMAT = 1;

const SCHEMA = `
syntax = "proto3";
package tsvisor.vmbus.v1;

message Gpadl {
  uint32 handle = 1;
  uint32 relid = 2;
  uint32 page_count = 3;
  repeated uint64 pages = 4;
  bool complete = 5;
  uint32 used_by_relid = 6;
  bool teardown_pending = 7;
  bool awaiting_body = 8;
}

message Channel {
  uint32 relid = 1;
  uint32 connection_id = 2;
  // 0 offered, 1 open, 2 rescinded
  uint32 state = 3;
  bool offered_to_guest = 4;
  uint32 ring_gpadl = 5;
  uint32 target_vp = 6;
  uint32 open_id = 7;
  uint32 sub_channel_index = 8;
  uint32 primary_relid = 9;
  uint32 next_sub_channel_index = 10;
  string interface_type = 11;
  string interface_instance = 12;
  uint32 downstream_page_offset = 13;
  bool has_user_data = 14;
  bytes user_data = 15;
}

message Server {
  bool connected = 1;
  uint32 version = 2;
  uint32 target_vcpu = 3;
  bool offers_requested = 4;
  repeated Channel channels = 5;
  repeated Gpadl gpadls = 6;
}

// A host -> guest control message not yet posted into the guest's SINT2 slot, oldest first.
message OutboxMessage {
  uint32 vp = 1;
  bytes message = 2;
}

// A registered VSP, in registration order: what it offers and the relid of its primary channel.
message VspBinding {
  string interface_type = 1;
  string interface_instance = 2;
  uint32 relid = 3;
  // Rescinded after a protocol violation: offered again once the guest releases the relid.
  bool resetting = 4;
}

// An open channel's state in its VSP's own encoding.
message ChannelVspState {
  uint32 relid = 1;
  bytes state = 2;
}

message VmbusState {
  uint32 format = 1;
  Server server = 2;
  repeated OutboxMessage outbox = 3;
  repeated VspBinding vsps = 4;
  repeated ChannelVspState channel_states = 5;
}
`;

const StateType = protobuf.parse(SCHEMA).root.lookupType('tsvisor.vmbus.v1.VmbusState');

export interface VspBindingState {
  interfaceType: string;
  interfaceInstance: string;
  /** 0: no channel record names this VSP now. */
  relid: number;
  resetting: boolean;
}

export interface VmbusSavedState {
  server: ServerSavedState;
  outbox: { vp: number; message: Uint8Array }[];
  vsps: VspBindingState[];
  channelStates: { relid: number; state: Uint8Array }[];
}

export function encodeVmbusState(s: VmbusSavedState): Uint8Array {
  const server = {
    connected: s.server.connected,
    version: s.server.version,
    targetVcpu: s.server.targetVcpu,
    offersRequested: s.server.offersRequested,
    channels: s.server.channels.map((c) => ({
      ...c,
      state: CHANNEL_STATES.indexOf(c.state),
      hasUserData: c.userData !== null,
      userData: c.userData ?? new Uint8Array(0),
    })),
    gpadls: s.server.gpadls,
  };
  const message = StateType.fromObject({ format: VMBUS_SAVED_STATE_FORMAT, server, outbox: s.outbox, vsps: s.vsps, channelStates: s.channelStates });
  return StateType.encode(message).finish();
}

type Obj = Record<string, unknown>;

/** Parses the bytes; throws VMBUS_BAD_SAVED_STATE when they are not this format. */
export function decodeVmbusState(bytes: Uint8Array): VmbusSavedState {
  let o: Obj;
  try {
    o = StateType.toObject(StateType.decode(bytes), { longs: Number, bytes: Uint8Array as unknown as typeof String, defaults: true, arrays: true }) as Obj;
  } catch (e) {
    throw savedStateError(`undecodable (${e instanceof Error ? e.message : String(e)})`);
  }
  if (o.format !== VMBUS_SAVED_STATE_FORMAT)
    throw savedStateError(`format ${String(o.format)} is not supported (this build reads ${VMBUS_SAVED_STATE_FORMAT})`);
  const server = o.server as Obj | undefined;
  if (!server) throw savedStateError('no server state');
  const channels = (server.channels as Obj[]).map((c) => {
    const state = CHANNEL_STATES[c.state as number];
    if (state === undefined) throw savedStateError(`relid ${String(c.relid)}: channel state ${String(c.state)}`);
    return {
      relid: c.relid as number,
      connectionId: c.connectionId as number,
      state,
      offeredToGuest: c.offeredToGuest as boolean,
      ringGpadl: c.ringGpadl as number,
      targetVp: c.targetVp as number,
      openId: c.openId as number,
      subChannelIndex: c.subChannelIndex as number,
      primaryRelid: c.primaryRelid as number,
      nextSubChannelIndex: c.nextSubChannelIndex as number,
      interfaceType: c.interfaceType as string,
      interfaceInstance: c.interfaceInstance as string,
      downstreamPageOffset: c.downstreamPageOffset as number,
      userData: c.hasUserData ? new Uint8Array(c.userData as Uint8Array) : null,
    };
  });
  const gpadls = (server.gpadls as Obj[]).map((g) => ({
    handle: g.handle as number,
    relid: g.relid as number,
    pageCount: g.pageCount as number,
    pages: [...(g.pages as number[])],
    complete: g.complete as boolean,
    usedByRelid: g.usedByRelid as number,
    teardownPending: g.teardownPending as boolean,
    awaitingBody: g.awaitingBody as boolean,
  }));
  return {
    server: {
      connected: server.connected as boolean,
      version: server.version as number,
      targetVcpu: server.targetVcpu as number,
      offersRequested: server.offersRequested as boolean,
      channels,
      gpadls,
    },
    outbox: (o.outbox as Obj[]).map((m) => ({ vp: m.vp as number, message: new Uint8Array(m.message as Uint8Array) })),
    vsps: (o.vsps as Obj[]).map((v) => ({
      interfaceType: v.interfaceType as string,
      interfaceInstance: v.interfaceInstance as string,
      relid: v.relid as number,
      resetting: v.resetting as boolean,
    })),
    channelStates: (o.channelStates as Obj[]).map((c) => ({ relid: c.relid as number, state: new Uint8Array(c.state as Uint8Array) })),
  };
}
