/**
 * What Linux does with a host's KVP request, byte for byte, as a scripted guest: the kernel half
 * (drivers/hv/hv_kvp.c: kvp_send_key turns the host's UTF-16 request into the daemon's UTF-8
 * message, kvp_respond_to_host writes the daemon's answer back into the host's buffer) and the
 * user half (tools/hv/hv_kvp_daemon.c: the pool records, kvp_key_add_or_modify, kvp_get_value,
 * kvp_key_delete, kvp_pool_enumerate). Both halves use struct hv_kvp_msg
 * (include/uapi/linux/hyperv.h): a 4-byte header, then the body union, where kvp_get/kvp_set
 * hold struct hv_kvp_exchg_msg_value at 4 and kvp_enum_data holds an index at 4 and the same
 * struct at 8.
 *
 * Kept to what the host's requests use: REG_SZ values, the External pool's records (the Auto
 * pool, which the daemon generates, is not modelled).
 */
import { IC_HEADER_SIZE, IcFlag } from '../../root-partition/vsp/ic/ic-protocol.ts';
import type { Sent } from './scripted-ic-guest.ts';

const KEY_MAX = 512;
const VALUE_MAX = 2048;
/** Struct hv_kvp_exchg_msg_value at `at`: value_type, key_size, value_size, key[512], value[2048]. */
const field = (at: number) => ({ type: at, keySize: at + 4, valueSize: at + 8, key: at + 12, value: at + 12 + KEY_MAX });
const GET_SET = field(4);
const ENUM = field(8);
const DELETE_KEY_SIZE = 4;
const DELETE_KEY = 8;
/** Room for the largest body (kvp_enum_data). */
const MSG_BYTES = ENUM.value + VALUE_MAX;

const HV_S_CONT = 0x80070103;
const REG_SZ = 1;
const OP = { Get: 0, Set: 1, Delete: 2, Enumerate: 3 } as const;

/** utf16s_to_utf8s: at most `units` UTF-16 units, stopping at a NUL (ASCII and the BMP only). */
function utf16ToString(b: Uint8Array, at: number, units: number, fieldBytes: number): string {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let s = '';
  for (let i = 0; i < units && 2 * i + 1 < fieldBytes; i++) {
    const c = v.getUint16(at + 2 * i, true);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** A C string at `at` (strlen). */
function cString(b: Uint8Array, at: number, max: number): string {
  const end = b.subarray(at, at + max).indexOf(0);
  return new TextDecoder().decode(b.subarray(at, end < 0 ? at + max : at + end));
}

/** utf8s_to_utf16s into the host's buffer; returns the units written. */
function putUtf16(b: Uint8Array, at: number, s: string): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < s.length; i++) v.setUint16(at + 2 * i, s.charCodeAt(i), true);
  v.setUint16(at + 2 * s.length, 0, true);
  return s.length;
}

export class LinuxKvpGuest {
  /** The daemon's pool files (/var/lib/hyperv/.kvp_pool_N): records of key[512], value[2048], in order. */
  readonly pools = new Map<number, { key: Uint8Array; value: Uint8Array }[]>();

  /** The answer Linux sends for one host request: the request's own bytes, edited in place. */
  answer(req: Sent): Uint8Array {
    const out = new Uint8Array(req.bytes);
    const hostMsg = out.subarray(IC_HEADER_SIZE);
    const status = this.serve(hostMsg);
    const v = new DataView(out.buffer);
    v.setUint32(20, status, true);
    out[25] = IcFlag.Transaction | IcFlag.Response;
    return out;
  }

  private records(pool: number) {
    let r = this.pools.get(pool);
    if (!r) this.pools.set(pool, (r = []));
    return r;
  }

  /** kvp_send_key, the daemon's switch, then kvp_respond_to_host; returns the status for the host. */
  private serve(host: Uint8Array): number {
    const h = new DataView(host.buffer, host.byteOffset, host.byteLength);
    const op = host[0]!,
      pool = host[1]!;
    // kvp_send_key: a zeroed message for the daemon, in UTF-8.
    const msg = new Uint8Array(MSG_BYTES);
    const m = new DataView(msg.buffer);
    const enc = new TextEncoder();
    const putUtf8 = (at: number, s: string, sizeAt: number) => {
      const bytes = enc.encode(s);
      msg.set(bytes, at);
      m.setUint32(sizeAt, bytes.length + 1, true);
    };
    if (op === OP.Set) {
      if (h.getUint32(GET_SET.type, true) !== REG_SZ) return HV_S_CONT;
      putUtf8(GET_SET.value, utf16ToString(host, GET_SET.value, h.getUint32(GET_SET.valueSize, true), VALUE_MAX), GET_SET.valueSize);
      putUtf8(GET_SET.key, utf16ToString(host, GET_SET.key, h.getUint32(GET_SET.keySize, true), KEY_MAX), GET_SET.keySize);
    } else if (op === OP.Get) {
      // Only the key goes to the daemon: value_size stays 0 in the zeroed message.
      putUtf8(GET_SET.key, utf16ToString(host, GET_SET.key, h.getUint32(GET_SET.keySize, true), KEY_MAX), GET_SET.keySize);
    } else if (op === OP.Delete) {
      putUtf8(DELETE_KEY, utf16ToString(host, DELETE_KEY, h.getUint32(DELETE_KEY_SIZE, true), KEY_MAX), DELETE_KEY_SIZE);
    } else if (op === OP.Enumerate) {
      m.setUint32(4, h.getUint32(4, true), true);
    } else return HV_S_CONT;

    // The daemon: records match on memcmp(key, record.key, key_size), which covers the NUL.
    const records = this.records(pool);
    const find = (keyAt: number, keySize: number) =>
      records.findIndex((r) => keySize <= KEY_MAX && msg.subarray(keyAt, keyAt + keySize).every((b, i) => r.key[i] === b));
    if (op === OP.Set) {
      const keySize = m.getUint32(GET_SET.keySize, true),
        valueSize = m.getUint32(GET_SET.valueSize, true);
      let i = find(GET_SET.key, keySize);
      if (i < 0) {
        records.push({ key: new Uint8Array(KEY_MAX), value: new Uint8Array(VALUE_MAX) });
        i = records.length - 1;
        records[i]!.key.set(msg.subarray(GET_SET.key, GET_SET.key + keySize));
      }
      records[i]!.value.set(msg.subarray(GET_SET.value, GET_SET.value + valueSize));
      return 0; // SET: the host's buffer goes back as it came
    }
    if (op === OP.Get) {
      const i = find(GET_SET.key, m.getUint32(GET_SET.keySize, true));
      if (i < 0) return HV_S_CONT;
      // kvp_get_value copies value_size bytes of the record: 0.
      const valueSize = m.getUint32(GET_SET.valueSize, true);
      msg.set(records[i]!.value.subarray(0, valueSize), GET_SET.value);
      // kvp_respond_to_host reads the value through body.kvp_enum_data (4 bytes further on) and
      // writes it into the host's kvp_get.data.
      const value = cString(msg, ENUM.value, VALUE_MAX);
      h.setUint32(GET_SET.valueSize, 2 * (putUtf16(host, GET_SET.value, value) + 1), true);
      h.setUint32(GET_SET.type, REG_SZ, true);
      return 0;
    }
    if (op === OP.Delete) {
      const i = find(DELETE_KEY, m.getUint32(DELETE_KEY_SIZE, true));
      if (i < 0) return HV_S_CONT;
      records.splice(i, 1);
      return 0;
    }
    // ENUMERATE: kvp_pool_enumerate copies the whole record, then both strings go back in UTF-16.
    const index = m.getUint32(4, true);
    if (index >= records.length) return HV_S_CONT;
    msg.set(records[index]!.key, ENUM.key);
    msg.set(records[index]!.value, ENUM.value);
    h.setUint32(ENUM.keySize, 2 * (putUtf16(host, ENUM.key, cString(msg, ENUM.key, KEY_MAX)) + 1), true);
    h.setUint32(ENUM.valueSize, 2 * (putUtf16(host, ENUM.value, cString(msg, ENUM.value, VALUE_MAX)) + 1), true);
    h.setUint32(ENUM.type, REG_SZ, true);
    return 0;
  }

  /** A pool's records as the daemon's file holds them, decoded. */
  items(pool: number): [string, string][] {
    return (this.pools.get(pool) ?? []).map((r) => [cString(r.key, 0, KEY_MAX), cString(r.value, 0, VALUE_MAX)]);
  }
}
