/**
 * The integration-component (IC, "util") pipe and message headers, shared by every IC service
 * (Linux include/linux/hyperv.h struct vmbuspipe_hdr, struct icmsg_hdr,
 * struct icmsg_negotiate). Kept in the subset AssemblyScript also compiles where it matters; the
 * guest copy is child-sdk/drivers/ic-protocol.ts. All fields little-endian.
 *
 *   @0  pipe flags u32 (1 = DATA)        @4  pipe msgsize u32 (bytes after these 8)
 *   @8  icverframe {major u16, minor u16} @12 icmsgtype u16
 *   @14 icvermsg {major u16, minor u16}   @18 icmsgsize u16 (body bytes)
 *   @20 status u32 (HRESULT)              @24 ictransaction_id u8  @25 icflags u8  @26 reserved u16
 *   @28 body
 */

/** ICMSGTYPE_* (Linux include/linux/hyperv.h: not the often-assumed numbers). */
export const IcMessageType = {
  Negotiate: 0,
  Heartbeat: 1,
  KvpExchange: 2,
  Shutdown: 3,
  TimeSync: 4,
  Vss: 5,
  FileCopy: 7,
} as const;

/** ICMSGHDRFLAG_* (Linux). */
export const IcFlag = { Transaction: 0x1, Request: 0x2, Response: 0x4 } as const;

/** HRESULTs carried in icmsg_hdr.status (Linux HV_S_OK/HV_E_FAIL/HV_S_CONT; OpenVMM for the rest). */
export const IcStatus = {
  Ok: 0,
  Fail: 0x80004005,
  NotSupported: 0x80070032,
  /** HV_S_CONT in Linux: ENUMERATE past the last item. */
  NoMoreItems: 0x80070103,
  NotFound: 0x80041002,
} as const;

/** vmbuspipe_hdr.flags: OpenVMM writes 1 (data); Linux ignores it. */
export const VMBUS_PIPE_FLAG_DATA = 1;
export const PIPE_HEADER_SIZE = 8;
export const ICMSG_HEADER_SIZE = 20;
/** Pipe header plus icmsg_hdr: where every IC body starts. */
export const IC_HEADER_SIZE = PIPE_HEADER_SIZE + ICMSG_HEADER_SIZE;
/** Linux IC_VERSION_NEGOTIATION_MAX_VER_COUNT: more versions than this is a malformed negotiate. */
export const IC_MAX_VERSION_COUNT = 100;
/** Negotiate body before the version list: icframe_vercnt u16, icmsg_vercnt u16, reserved u32. */
export const NEGOTIATE_FIXED_SIZE = 8;

export interface IcVersion {
  major: number;
  minor: number;
}

export interface IcHeader {
  framework: IcVersion;
  type: number;
  message: IcVersion;
  /** icmsgsize: body bytes. */
  bodySize: number;
  status: number;
  transactionId: number;
  flags: number;
}

export type IcDecoded = { ok: true; header: IcHeader; body: Uint8Array } | { ok: false; reason: string };

export const versionText = (v: IcVersion): string => `${v.major}.${v.minor}`;
export const sameVersion = (a: IcVersion, b: IcVersion): boolean => a.major === b.major && a.minor === b.minor;

/** One IC message: both headers then the body; the pipe's msgsize covers icmsg_hdr and body. */
export function encodeIcMessage(h: IcHeader, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(IC_HEADER_SIZE + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, VMBUS_PIPE_FLAG_DATA, true);
  v.setUint32(4, ICMSG_HEADER_SIZE + body.length, true);
  v.setUint16(8, h.framework.major, true);
  v.setUint16(10, h.framework.minor, true);
  v.setUint16(12, h.type, true);
  v.setUint16(14, h.message.major, true);
  v.setUint16(16, h.message.minor, true);
  v.setUint16(18, h.bodySize, true);
  v.setUint32(20, h.status >>> 0, true);
  v.setUint8(24, h.transactionId & 0xff);
  v.setUint8(25, h.flags);
  out.set(body, IC_HEADER_SIZE);
  return out;
}

/**
 * Decodes and bounds-checks an IC message from the guest. The pipe's msgsize and icmsgsize are
 * the guest's claims: both must fit in the bytes that really arrived.
 */
export function decodeIcMessage(bytes: Uint8Array): IcDecoded {
  if (bytes.length < IC_HEADER_SIZE) return { ok: false, reason: `${bytes.length} bytes: shorter than the ${IC_HEADER_SIZE}-byte IC headers` };
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const msgsize = v.getUint32(4, true);
  if (msgsize < ICMSG_HEADER_SIZE || PIPE_HEADER_SIZE + msgsize > bytes.length) {
    return { ok: false, reason: `pipe msgsize ${msgsize} does not fit the ${bytes.length}-byte packet` };
  }
  const header: IcHeader = {
    framework: { major: v.getUint16(8, true), minor: v.getUint16(10, true) },
    type: v.getUint16(12, true),
    message: { major: v.getUint16(14, true), minor: v.getUint16(16, true) },
    bodySize: v.getUint16(18, true),
    status: v.getUint32(20, true),
    transactionId: v.getUint8(24),
    flags: v.getUint8(25),
  };
  if (IC_HEADER_SIZE + header.bodySize > PIPE_HEADER_SIZE + msgsize) {
    return { ok: false, reason: `icmsgsize ${header.bodySize} overruns the pipe message (${msgsize} bytes)` };
  }
  return { ok: true, header, body: bytes.subarray(IC_HEADER_SIZE, IC_HEADER_SIZE + header.bodySize) };
}

/** NEGOTIATE request body: the framework versions, then the message versions, each {major, minor}. */
export function encodeNegotiate(framework: readonly IcVersion[], message: readonly IcVersion[]): Uint8Array {
  const out = new Uint8Array(NEGOTIATE_FIXED_SIZE + 4 * (framework.length + message.length));
  const v = new DataView(out.buffer);
  v.setUint16(0, framework.length, true);
  v.setUint16(2, message.length, true);
  let o = NEGOTIATE_FIXED_SIZE;
  for (const x of [...framework, ...message]) {
    v.setUint16(o, x.major, true);
    v.setUint16(o + 2, x.minor, true);
    o += 4;
  }
  return out;
}

export type NegotiateOutcome = { ok: true; framework: IcVersion; message: IcVersion } | { ok: false; reason: string };

/**
 * The guest's NEGOTIATE answer: counts 1/1 and the chosen versions, each one the host offered
 * (OpenVMM expects exactly 1/1; Linux writes 0/0 when nothing matched).
 */
export function decodeNegotiateResponse(body: Uint8Array, framework: readonly IcVersion[], message: readonly IcVersion[]): NegotiateOutcome {
  if (body.length < NEGOTIATE_FIXED_SIZE + 8) return { ok: false, reason: `negotiate answer of ${body.length} bytes` };
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const fc = v.getUint16(0, true),
    mc = v.getUint16(2, true);
  if (fc === 0 && mc === 0) return { ok: false, reason: 'the guest supports none of the offered versions' };
  if (fc !== 1 || mc !== 1) return { ok: false, reason: `negotiate answer with counts ${fc}/${mc}, not 1/1` };
  const fw = { major: v.getUint16(8, true), minor: v.getUint16(10, true) };
  const msg = { major: v.getUint16(12, true), minor: v.getUint16(14, true) };
  if (!framework.some((x) => sameVersion(x, fw))) return { ok: false, reason: `framework version ${versionText(fw)} was not offered` };
  if (!message.some((x) => sameVersion(x, msg))) return { ok: false, reason: `message version ${versionText(msg)} was not offered` };
  return { ok: true, framework: fw, message: msg };
}

/** Framework versions the host offers (OpenVMM: 1.0 and 3.0). */
export const IC_FRAMEWORK_VERSIONS: readonly IcVersion[] = [
  { major: 1, minor: 0 },
  { major: 3, minor: 0 },
];
