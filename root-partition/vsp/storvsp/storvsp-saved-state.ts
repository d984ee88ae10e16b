/**
 * A storvsp channel's saved state: where the vstor initialization stands and the protocol version
 * it agreed (field-numbered protobuf with a format number). That is all a channel keeps between
 * requests: storvsp executes each request to completion inside the drain that read it, so at a
 * save (taken between drains) no request is in flight, and the controller's disks keep no state
 * of their own between commands.
 */
import protobuf from 'protobufjs';
import { HvError } from '../../../hypervisor/hv-error.ts';
import type { StorVspInitState } from './storvsp-channel.ts';

export const STORVSP_SAVED_STATE_FORMAT = 1;

const SCHEMA = `
syntax = "proto3";
package tsvisor.storvsp.v1;

message StorvspChannel {
  uint32 format = 1;
  // 0 begin, 1 query-version, 2 query-properties, 3 end, 4 ready (Linux storvsc_channel_init's steps)
  uint32 init_state = 2;
  uint32 version = 3;
  bool sub_channel = 4;
}
`;

const ChannelType = protobuf.parse(SCHEMA).root.lookupType('tsvisor.storvsp.v1.StorvspChannel');
const KINDS = ['begin', 'query-version', 'query-properties', 'end', 'ready'] as const;

export interface StorVspSavedChannel {
  init: StorVspInitState;
  subChannel: boolean;
}

export function encodeStorVspChannel(s: StorVspSavedChannel): Uint8Array {
  const version = 'version' in s.init ? s.init.version : 0;
  return ChannelType.encode(
    ChannelType.fromObject({
      format: STORVSP_SAVED_STATE_FORMAT,
      initState: KINDS.indexOf(s.init.kind),
      version,
      subChannel: s.subChannel,
    }),
  ).finish();
}

/** Decodes and checks against the versions this controller accepts; throws STORVSP_BAD_SAVED_STATE. */
export function decodeStorVspChannel(bytes: Uint8Array, versions: readonly number[]): StorVspSavedChannel {
  const bad = (what: string) => new HvError('STORVSP_BAD_SAVED_STATE', `storvsp saved state: ${what}`);
  let o: { format: number; initState: number; version: number; subChannel: boolean };
  try {
    o = ChannelType.toObject(ChannelType.decode(bytes), { defaults: true }) as typeof o;
  } catch (e) {
    throw bad(`undecodable (${e instanceof Error ? e.message : String(e)})`);
  }
  if (o.format !== STORVSP_SAVED_STATE_FORMAT) throw bad(`format ${o.format} is not supported (this build reads ${STORVSP_SAVED_STATE_FORMAT})`);
  const kind = KINDS[o.initState];
  if (kind === undefined) throw bad(`initialization state ${o.initState}`);
  let init: StorVspInitState;
  if (kind === 'begin' || kind === 'query-version') {
    if (o.version !== 0) throw bad(`version 0x${o.version.toString(16)} before one was agreed`);
    init = { kind };
  } else {
    if (!versions.includes(o.version)) throw bad(`protocol version 0x${o.version.toString(16)} is not one this controller accepts`);
    init = { kind, version: o.version };
  }
  if (o.subChannel && kind !== 'ready') throw bad(`a sub-channel in state ${kind}`);
  return { init, subChannel: o.subChannel };
}
