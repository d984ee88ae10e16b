/**
 * Bodies of the heartbeat, shutdown and time-sync messages (offsets from the end of the IC
 * headers; Linux include/linux/hyperv.h heartbeat_msg_data,
 * shutdown_msg_data, ictimesync_data, ictimesync_ref_data; OpenVMM hyperv_ic_protocol).
 */

// ---- heartbeat: seq_num u64 @0, application_state u32 @8 (OpenVMM), reserved to 40 bytes (Linux u32[8])
export const HEARTBEAT_BODY_SIZE = 40;
/** OpenVMM HeartbeatApplicationState. */
export const HeartbeatApplicationState = { Unknown: 0, Healthy: 1, Critical: 2, Stopped: 3 } as const;

export function encodeHeartbeat(sequence: bigint): Uint8Array {
  const b = new Uint8Array(HEARTBEAT_BODY_SIZE);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, sequence), true);
  return b;
}

export function decodeHeartbeat(body: Uint8Array): { sequence: bigint; applicationState: number } | null {
  if (body.length < 12) return null;
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return { sequence: v.getBigUint64(0, true), applicationState: v.getUint32(8, true) };
}

// ---- shutdown: reason_code u32 @0, timeout_seconds u32 @4, flags u32 @8, display_message u8[2048] @12
export const SHUTDOWN_BODY_SIZE = 12 + 2048;
export const SHUTDOWN_MESSAGE_BYTES = 2048;
/** Shutdown flags (OpenVMM ShutdownFlags; Linux shutdown_onchannelcallback: 0/1 shut down, 2/3 restart, 4/5 hibernate). */
export const ShutdownFlag = { Force: 0x1, Restart: 0x2, Hibernate: 0x4 } as const;

export interface ShutdownRequest {
  reasonCode: number;
  timeoutSeconds: number;
  flags: number;
  /** display_message: a byte field; written here as UTF-8, NUL-terminated, cut to fit. */
  message: string;
}

export function encodeShutdown(r: ShutdownRequest): Uint8Array {
  const b = new Uint8Array(SHUTDOWN_BODY_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, r.reasonCode >>> 0, true);
  v.setUint32(4, r.timeoutSeconds >>> 0, true);
  v.setUint32(8, r.flags >>> 0, true);
  const text = new TextEncoder().encode(r.message).subarray(0, SHUTDOWN_MESSAGE_BYTES - 1);
  b.set(text, 12);
  return b;
}

export function decodeShutdown(body: Uint8Array): ShutdownRequest | null {
  if (body.length < 12) return null;
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const msg = body.subarray(12, 12 + SHUTDOWN_MESSAGE_BYTES);
  const nul = msg.indexOf(0);
  return {
    reasonCode: v.getUint32(0, true),
    timeoutSeconds: v.getUint32(4, true),
    flags: v.getUint32(8, true),
    message: new TextDecoder().decode(nul < 0 ? msg : msg.subarray(0, nul)),
  };
}

// ---- time sync
/** ICTIMESYNCFLAG_* (Linux): PROBE asks nothing, SYNC sets the clock now, SAMPLE is a periodic sample. */
export const TimeSyncFlag = { Probe: 0, Sync: 1, Sample: 2 } as const;
/** ictimesync_data (< 4.0): parenttime u64 @0, childtime u64 @8, roundtriptime u64 @16, flags u8 @24 (+ padding to 32). */
export const TIMESYNC_BODY_SIZE_V3 = 32;
/** ictimesync_ref_data (4.0): parenttime u64 @0, vmreferencetime u64 @8, flags u8 @16, leapflags u8 @17, stratum u8 @18, reserved. */
export const TIMESYNC_BODY_SIZE_V4 = 32;
/** 100 ns intervals between 1601-01-01 and 1970-01-01 (Windows FILETIME epoch to the Unix epoch). */
export const FILETIME_UNIX_EPOCH = 116444736000000000n;

/** A Unix time in milliseconds as a Windows FILETIME (100 ns units since 1601-01-01 UTC). */
export function filetimeFromUnixMs(ms: number): bigint {
  return FILETIME_UNIX_EPOCH + BigInt(Math.floor(ms)) * 10_000n;
}

export function unixMsFromFiletime(ft: bigint): number {
  return Number((ft - FILETIME_UNIX_EPOCH) / 10_000n);
}

export interface TimeSample {
  /** UTC, FILETIME units. */
  parentTime: bigint;
  /** 4.0: partition reference time (100 ns) when parentTime was read. Below 4.0: childtime (0 from the host). */
  referenceTime: bigint;
  flags: number;
  /** 4.0 only: leap-second flags and NTP stratum (0 = unspecified). */
  leapFlags?: number;
  stratum?: number;
}

export function encodeTimeSample(s: TimeSample, messageMajor: number): Uint8Array {
  const b = new Uint8Array(messageMajor >= 4 ? TIMESYNC_BODY_SIZE_V4 : TIMESYNC_BODY_SIZE_V3);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, s.parentTime, true);
  v.setBigUint64(8, s.referenceTime, true);
  if (messageMajor >= 4) {
    v.setUint8(16, s.flags);
    v.setUint8(17, s.leapFlags ?? 0);
    v.setUint8(18, s.stratum ?? 0);
  } else {
    v.setUint8(24, s.flags); // roundtriptime @16 stays 0: the host does not measure it
  }
  return b;
}

export function decodeTimeSample(body: Uint8Array, messageMajor: number): TimeSample | null {
  if (body.length < (messageMajor >= 4 ? 19 : 25)) return null;
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return messageMajor >= 4
    ? { parentTime: v.getBigUint64(0, true), referenceTime: v.getBigUint64(8, true), flags: v.getUint8(16), leapFlags: v.getUint8(17), stratum: v.getUint8(18) }
    : { parentTime: v.getBigUint64(0, true), referenceTime: v.getBigUint64(8, true), flags: v.getUint8(24) };
}
