/**
 * An integration service channel's saved state: field-numbered protobuf with a format number.
 * What the IC framework holds (the negotiated versions, the next VMBus transaction id and icmsg
 * transaction number, the request in flight: its id and type, so that the guest's answer after a
 * restore is recognised) plus what each service keeps (heartbeat sequence; time sync's last
 * acknowledged sample; KVP's last enumerated pools). Decoding checks every value against this
 * build and the service; nothing is applied here.
 */
import protobuf from 'protobufjs';
import { HvError } from '../../../hypervisor/hv-error.ts';
import { IC_FRAMEWORK_VERSIONS, IcMessageType, sameVersion, type IcVersion } from './ic-protocol.ts';
import type { IcServiceSpec } from './ic-services.ts';
import { KVP_MAX_KEY_BYTES, KVP_MAX_VALUE_BYTES, KVP_POOL_COUNT, type KvpItem } from './kvp-protocol.ts';

export const IC_SAVED_STATE_FORMAT = 1;
/** Items per pool a saved state may carry: what one enumeration can read (KVP_MAX_ENUMERATE). */
export const IC_SAVED_KVP_ITEMS = 1024;

const SCHEMA = `
syntax = "proto3";
package tsvisor.ic.v1;

message Version { uint32 major = 1; uint32 minor = 2; }

message Heartbeat {
  uint64 sequence = 1;
  // The guest had answered a heartbeat correctly (the status was OK or Degraded, not No Contact).
  bool answered = 2;
  uint32 application_state = 3;
}

message TimeSample { uint64 parent_time = 1; uint64 reference_time = 2; uint32 flags = 3; }
message TimeSync { bool has_last_sample = 1; TimeSample last_sample = 2; }

message KvpItem { string key = 1; string value = 2; }
message KvpPool { uint32 pool = 1; repeated KvpItem items = 2; }
message Kvp { repeated KvpPool pools = 1; }

message IcChannel {
  uint32 format = 1;
  bool negotiated = 2;
  Version framework = 3;
  Version message = 4;
  uint32 next_trans_id = 5;
  uint32 ic_transaction = 6;
  bool has_inflight = 7;
  uint32 inflight_trans_id = 8;
  uint32 inflight_type = 9;
  Heartbeat heartbeat = 10;
  TimeSync time_sync = 11;
  Kvp kvp = 12;
}
`;

const ChannelType = protobuf.parse(SCHEMA).root.lookupType('tsvisor.ic.v1.IcChannel');

export interface IcSavedState {
  negotiated: { framework: IcVersion; message: IcVersion } | null;
  nextTransId: number;
  icTransaction: number;
  inflight: { transId: number; type: number } | null;
  heartbeat?: { sequence: bigint; answered: boolean; applicationState: number };
  timeSync?: { lastSample: { parentTime: bigint; referenceTime: bigint; flags: number } | null };
  kvp?: { pools: { pool: number; items: KvpItem[] }[] };
}

export function icStateError(service: string, what: string): HvError {
  return new HvError('IC_BAD_SAVED_STATE', `${service} saved state: ${what}`);
}

export function encodeIcState(s: IcSavedState): Uint8Array {
  const o = {
    format: IC_SAVED_STATE_FORMAT,
    negotiated: s.negotiated !== null,
    framework: s.negotiated?.framework,
    message: s.negotiated?.message,
    nextTransId: s.nextTransId,
    icTransaction: s.icTransaction,
    hasInflight: s.inflight !== null,
    inflightTransId: s.inflight?.transId ?? 0,
    inflightType: s.inflight?.type ?? 0,
    heartbeat: s.heartbeat && { ...s.heartbeat, sequence: s.heartbeat.sequence.toString() },
    timeSync: s.timeSync && {
      hasLastSample: s.timeSync.lastSample !== null,
      lastSample: s.timeSync.lastSample && {
        parentTime: s.timeSync.lastSample.parentTime.toString(),
        referenceTime: s.timeSync.lastSample.referenceTime.toString(),
        flags: s.timeSync.lastSample.flags,
      },
    },
    kvp: s.kvp,
  };
  return ChannelType.encode(ChannelType.fromObject(o)).finish();
}

// protobufjs toObject output, checked field by field below
// biome-ignore lint/suspicious/noExplicitAny: the decoded object is untyped until those checks
type Obj = Record<string, any>;

/** Decodes and checks against `spec`; throws IC_BAD_SAVED_STATE naming the field. */
export function decodeIcState(bytes: Uint8Array, spec: IcServiceSpec): IcSavedState {
  const bad = (what: string) => icStateError(spec.name, what);
  let o: Obj;
  try {
    o = ChannelType.toObject(ChannelType.decode(bytes), { longs: String, defaults: true, arrays: true }) as Obj;
  } catch (e) {
    throw bad(`undecodable (${e instanceof Error ? e.message : String(e)})`);
  }
  if (o.format !== IC_SAVED_STATE_FORMAT) throw bad(`format ${String(o.format)} is not supported (this build reads ${IC_SAVED_STATE_FORMAT})`);
  let negotiated: IcSavedState['negotiated'] = null;
  if (o.negotiated) {
    const framework = { major: o.framework?.major ?? 0, minor: o.framework?.minor ?? 0 };
    const message = { major: o.message?.major ?? 0, minor: o.message?.minor ?? 0 };
    if (!IC_FRAMEWORK_VERSIONS.some((v) => sameVersion(v, framework)))
      throw bad(`framework version ${framework.major}.${framework.minor} is not one this host offers`);
    if (!spec.messageVersions.some((v) => sameVersion(v, message)))
      throw bad(`message version ${message.major}.${message.minor} is not one this service offers`);
    negotiated = { framework, message };
  }
  const nextTransId = o.nextTransId as number;
  if (nextTransId < 1) throw bad(`next transaction id ${nextTransId}`);
  if (o.icTransaction > 0xff) throw bad(`icmsg transaction ${o.icTransaction as number}`);
  let inflight: IcSavedState['inflight'] = null;
  if (o.hasInflight) {
    const type = o.inflightType as number,
      transId = o.inflightTransId as number;
    const allowed = negotiated ? [IcMessageType.Negotiate, spec.messageType] : [IcMessageType.Negotiate];
    if (!(allowed as number[]).includes(type)) throw bad(`request of type ${type} in flight`);
    if (transId < 1 || transId >= nextTransId) throw bad(`transaction ${transId} in flight, next is ${nextTransId}`);
    inflight = { transId, type };
  }
  const s: IcSavedState = { negotiated, nextTransId, icTransaction: o.icTransaction as number, inflight };
  if (o.heartbeat) {
    const seq = BigInt(o.heartbeat.sequence as string);
    s.heartbeat = { sequence: seq, answered: o.heartbeat.answered as boolean, applicationState: o.heartbeat.applicationState as number };
  }
  if (o.timeSync) {
    const l = o.timeSync.lastSample as Obj | null;
    s.timeSync = {
      lastSample:
        o.timeSync.hasLastSample && l
          ? { parentTime: BigInt(l.parentTime as string), referenceTime: BigInt(l.referenceTime as string), flags: l.flags as number }
          : null,
    };
  }
  if (o.kvp) {
    const pools = (o.kvp.pools as Obj[]).map((p) => ({
      pool: p.pool as number,
      items: (p.items as Obj[]).map((i) => ({ key: i.key as string, value: i.value as string })),
    }));
    const seen = new Set<number>();
    for (const p of pools) {
      if (p.pool >= KVP_POOL_COUNT || seen.has(p.pool)) throw bad(`KVP pool ${p.pool}`);
      seen.add(p.pool);
      if (p.items.length > IC_SAVED_KVP_ITEMS) throw bad(`KVP pool ${p.pool}: ${p.items.length} items, more than ${IC_SAVED_KVP_ITEMS}`);
      // UTF-16 with its terminator, as the protocol carries them (kvp-protocol.ts).
      for (const i of p.items) {
        if ((i.key.length + 1) * 2 > KVP_MAX_KEY_BYTES || (i.value.length + 1) * 2 > KVP_MAX_VALUE_BYTES)
          throw bad(`KVP pool ${p.pool}: an item longer than the protocol carries`);
      }
    }
    s.kvp = { pools };
  }
  return s;
}
