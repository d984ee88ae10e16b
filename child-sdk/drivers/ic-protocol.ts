// Integration-component (IC) wire formats for the guest drivers: the guest copy of
// root-partition/vsp/ic/ic-protocol.ts, ic-bodies.ts and kvp-protocol.ts, kept byte-compatible
// by test/vectors/ic/. Sources: Linux include/linux/hyperv.h and
// drivers/hv/hv_util.c, hv_kvp.c (struct vmbuspipe_hdr, icmsg_hdr, icmsg_negotiate,
// heartbeat_msg_data, shutdown_msg_data, ictimesync_ref_data, hv_kvp_msg).
// Every function here works on one IC message in guest memory and answers it in place, as Linux
// does: it checks the message against the bytes received (the host is trusted less than the
// bytes say), rewrites the body, sets icflags = TRANSACTION | RESPONSE and the status, and
// returns the length of the answer. No allocation, no platform imports.

/** icmsg_hdr.icmsgtype values (Linux include/linux/hyperv.h ICMSGTYPE_*). */
export const ICMSGTYPE_NEGOTIATE: u32 = 0;
export const ICMSGTYPE_HEARTBEAT: u32 = 1;
export const ICMSGTYPE_KVPEXCHANGE: u32 = 2;
export const ICMSGTYPE_SHUTDOWN: u32 = 3;
export const ICMSGTYPE_TIMESYNC: u32 = 4;

/** icmsg_hdr.icflags bits: a host request carries TRANSACTION | REQUEST, the answer TRANSACTION | RESPONSE. */
export const ICMSGHDRFLAG_TRANSACTION: u8 = 1;
export const ICMSGHDRFLAG_REQUEST: u8 = 2;
export const ICMSGHDRFLAG_RESPONSE: u8 = 4;

/** icmsg_hdr.status values (HRESULTs: S_OK, E_FAIL, ERROR_NOT_SUPPORTED). */
export const IC_S_OK: u32 = 0;
export const IC_E_FAIL: u32 = 0x80004005;
export const IC_NOT_SUPPORTED: u32 = 0x80070032;
/** HV_S_CONT: ENUMERATE past the last item. */
export const IC_NO_MORE_ITEMS: u32 = 0x80070103;

/** Bytes before an IC message body: vmbuspipe_hdr (8) + icmsg_hdr (20). */
export const IC_HEADER_SIZE: u32 = 28;
/** IC_VERSION_NEGOTIATION_MAX_VER_COUNT (Linux). */
export const IC_MAX_VERSION_COUNT: u32 = 100;

/** Version as major << 16 | minor (Linux's util version numbers). */
// @ts-ignore: decorator
@inline export function icVersion(major: u32, minor: u32): u32 { return major << 16 | minor; }

/** icmsg_hdr.icmsgtype (u16 @12) of the IC message at `p` (ICMSGTYPE_*). */
export function icMessageType(p: usize): u32 { return load<u16>(p, 12); }
/** icmsg_hdr.icmsgsize (u16 @18): the body size the message claims; check it with icMessageLength first. */
export function icBodySize(p: usize): u32 { return load<u16>(p, 18); }
/** icmsg_hdr.status (u32 @20) of the IC message at `p`. */
export function icStatus(p: usize): u32 { return load<u32>(p, 20); }
/** icmsg_hdr.icflags (u8 @25) of the IC message at `p` (ICMSGHDRFLAG_* bits). */
export function icFlags(p: usize): u32 { return load<u8>(p, 25); }

/**
 * Length of the IC message at `p` (8 + pipe msgsize) when both size claims fit the `received`
 * bytes; 0 when the message is malformed.
 */
export function icMessageLength(p: usize, received: u32): u32 {
  if (received < IC_HEADER_SIZE) return 0;
  const msgsize = load<u32>(p, 4);
  if (msgsize < IC_HEADER_SIZE - 8 || msgsize > received - 8) return 0;
  if (IC_HEADER_SIZE + icBodySize(p) > 8 + msgsize) return 0;
  return 8 + msgsize;
}

/** Marks the message at `p` as the answer with `status`. */
export function icAnswer(p: usize, status: u32): void {
  store<u32>(p, status, 20);
  store<u8>(p, ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE, 25);
}

function findVersion(list: usize, from: u32, to: u32, wanted: u32): bool {
  for (let j = from; j < to; j++) {
    const at = list + (<usize>j << 2);
    if (icVersion(load<u16>(at), load<u16>(at, 2)) == wanted) return true;
  }
  return false;
}

/**
 * Answers NEGOTIATE (Linux vmbus_prep_negotiate_resp): picks, in this guest's preference order
 * (`fw`/`msg`: u32 versions), the first framework and message version the host listed, and
 * writes counts 1/1 with the two versions (counts 0/0 when none matched). Returns the chosen
 * message version, or 0 when negotiation failed. The answer's length is the request's.
 */
export function icNegotiate(p: usize, length: u32, fw: usize, fwCount: u32, msg: usize, msgCount: u32): u32 {
  const body = p + IC_HEADER_SIZE;
  store<u16>(p, 16, 18); // icmsgsize = 0x10, as Linux writes
  let chosenFw: u32 = 0, chosenMsg: u32 = 0;
  const hostFw = length >= IC_HEADER_SIZE + 8 ? <u32>load<u16>(body) : 0;
  const hostMsg = length >= IC_HEADER_SIZE + 8 ? <u32>load<u16>(body, 2) : 0;
  const fits = length >= IC_HEADER_SIZE + 16 && hostFw <= IC_MAX_VERSION_COUNT && hostMsg <= IC_MAX_VERSION_COUNT
    && IC_HEADER_SIZE + 8 + ((hostFw + hostMsg) << 2) <= length;
  if (fits) {
    const list = body + 8;
    for (let i: u32 = 0; i < fwCount && chosenFw == 0; i++) {
      const want = load<u32>(fw + (<usize>i << 2));
      if (findVersion(list, 0, hostFw, want)) chosenFw = want;
    }
    for (let i: u32 = 0; i < msgCount && chosenFw != 0 && chosenMsg == 0; i++) {
      const want = load<u32>(msg + (<usize>i << 2));
      if (findVersion(list, hostFw, hostFw + hostMsg, want)) chosenMsg = want;
    }
  }
  if (length >= IC_HEADER_SIZE + 16) {
    const ok = chosenMsg != 0;
    store<u16>(body, ok ? 1 : 0);
    store<u16>(body, ok ? 1 : 0, 2);
    store<u16>(body, <u16>(chosenFw >> 16), 8);
    store<u16>(body, <u16>chosenFw, 10);
    store<u16>(body, <u16>(chosenMsg >> 16), 12);
    store<u16>(body, <u16>chosenMsg, 14);
  }
  // Linux leaves the status as the host sent it either way; the counts say whether it worked.
  store<u8>(p, ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE, 25);
  return chosenMsg;
}

// ---- heartbeat: seq_num u64 @0, application_state u32 @8, reserved to 40 bytes

export const HEARTBEAT_APP_HEALTHY: u32 = 1;
export const HEARTBEAT_APP_CRITICAL: u32 = 2;

/** Answers a heartbeat: seq_num + 1 and this guest's application state. */
export function icHeartbeatAnswer(p: usize, length: u32, applicationState: u32): void {
  if (length < IC_HEADER_SIZE + 12 || icBodySize(p) < 12) {
    icAnswer(p, IC_E_FAIL);
    return;
  }
  const body = p + IC_HEADER_SIZE;
  store<u64>(body, load<u64>(body) + 1);
  store<u32>(body, applicationState, 8);
  icAnswer(p, IC_S_OK);
}

// ---- shutdown: reason_code u32 @0, timeout_seconds u32 @4, flags u32 @8, display_message @12

export const SHUTDOWN_FLAG_FORCE: u32 = 1;
export const SHUTDOWN_FLAG_RESTART: u32 = 2;
export const SHUTDOWN_FLAG_HIBERNATE: u32 = 4;

/** The request's flags, or 0xffffffff when the message is too short to hold them. */
export function icShutdownFlags(p: usize, length: u32): u32 {
  if (length < IC_HEADER_SIZE + 12 || icBodySize(p) < 12) return 0xffffffff;
  return load<u32>(p + IC_HEADER_SIZE, 8);
}

/** shutdown_msg_data.reason_code (u32 @0 of the body); check the length with icShutdownFlags first. */
export function icShutdownReason(p: usize): u32 { return load<u32>(p + IC_HEADER_SIZE); }

/**
 * Answers a shutdown request: S_OK when `accept` and the flags name a known action (Linux accepts
 * flags 0–5, i.e. shut down / restart / hibernate, each optionally forced), E_FAIL otherwise.
 * Returns true when the guest must now do it.
 */
export function icShutdownAnswer(p: usize, length: u32, accept: bool): bool {
  const flags = icShutdownFlags(p, length);
  const ok = accept && flags <= (SHUTDOWN_FLAG_HIBERNATE | SHUTDOWN_FLAG_FORCE);
  icAnswer(p, ok ? IC_S_OK : IC_E_FAIL);
  return ok;
}

// ---- time sync. 4.0: parenttime u64 @0, vmreferencetime u64 @8, flags u8 @16.
//      Below 4.0: parenttime u64 @0, childtime u64 @8, roundtriptime u64 @16, flags u8 @24.

export const ICTIMESYNCFLAG_PROBE: u32 = 0;
export const ICTIMESYNCFLAG_SYNC: u32 = 1;
export const ICTIMESYNCFLAG_SAMPLE: u32 = 2;

// Time-sync state (32 bytes): [0] offset i64 (FILETIME − reference time), [8] samples u32,
// [12] syncs u32, [16] last flags u32, [20] valid u32.
export const TIMESYNC_STATE_SIZE: u32 = 32;

/**
 * Takes a time sample: the offset becomes parenttime − vmreferencetime (4.0), so that UTC now =
 * reference time now + offset (Linux adj_guesttime corrects by the same difference); below 4.0,
 * parenttime − `referenceNow` (the sample is taken as current on arrival). Answers S_OK.
 */
export function icTimeSyncApply(p: usize, length: u32, messageMajor: u32, referenceNow: u64, state: usize): void {
  const need: u32 = messageMajor >= 4 ? 17 : 25;
  if (length < IC_HEADER_SIZE + need || icBodySize(p) < need) {
    icAnswer(p, IC_E_FAIL);
    return;
  }
  const body = p + IC_HEADER_SIZE;
  const parent = load<u64>(body);
  const flags = messageMajor >= 4 ? <u32>load<u8>(body, 16) : <u32>load<u8>(body, 24);
  const ref = messageMajor >= 4 ? load<u64>(body, 8) : referenceNow;
  store<u64>(state, parent - ref);
  store<u32>(state, load<u32>(state, 8) + 1, 8);
  if (flags == ICTIMESYNCFLAG_SYNC) store<u32>(state, load<u32>(state, 12) + 1, 12);
  store<u32>(state, flags, 16);
  store<u32>(state, 1, 20);
  icAnswer(p, IC_S_OK);
}

/** UTC now in FILETIME units from the last sample, or 0 before one. */
export function icTimeSyncNow(state: usize, referenceNow: u64): u64 {
  return load<u32>(state, 20) != 0 ? referenceNow + load<u64>(state) : 0;
}
