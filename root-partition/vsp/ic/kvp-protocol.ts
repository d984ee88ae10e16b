/**
 * KVP exchange wire format (Linux include/uapi/linux/hyperv.h
 * struct hv_kvp_msg, hv_kvp_exchg_msg_value). Body, from the end of the IC headers:
 *
 *   @0 operation u8, @1 pool u8, @2 pad u16                          (hv_kvp_hdr)
 *   GET / SET:   @4 value_type u32, @8 key_size u32, @12 value_size u32, @16 key[512], @528 value[2048]
 *   DELETE:      @4 key_size u32, @8 key[512]
 *   ENUMERATE:   @4 index u32, @8 value_type, @12 key_size, @16 value_size, @20 key[512], @532 value[2048]
 *
 * Keys and values are UTF-16LE; key_size and value_size count bytes including the UTF-16 NUL
 * (Linux kvp_respond_to_host: key_size = 2 * (chars + 1)).
 */

export const KvpOperation = { Get: 0, Set: 1, Delete: 2, Enumerate: 3, GetIpInfo: 4, SetIpInfo: 5 } as const;

/**
 * KVP pools (Linux enum KVP_POOL_*). External: host → guest items (HostExchangeItems);
 * Guest: items the guest's programs publish (GuestExchangeItems); Auto: guest intrinsic items the
 * integration driver fills in (host name, OS name…; GuestIntrinsicExchangeItems); AutoExternal:
 * host intrinsic items the host pushes (host name, VM name…); AutoInternal: Linux's own.
 */
export const KvpPool = { External: 0, Guest: 1, Auto: 2, AutoExternal: 3, AutoInternal: 4 } as const;
export const KVP_POOL_COUNT = 5;

/** REG_SZ, REG_U32, REG_U64 (Linux). Only strings are exchanged here. */
export const KvpValueType = { String: 1, U32: 4, U64: 8 } as const;

export const KVP_MAX_KEY_BYTES = 512;
export const KVP_MAX_VALUE_BYTES = 2048;
/** The value struct (value_type, key_size, value_size, key, value). */
export const KVP_VALUE_STRUCT_SIZE = 12 + KVP_MAX_KEY_BYTES + KVP_MAX_VALUE_BYTES;
/** Every KVP body this host sends has the ENUMERATE size, the largest of the four operations. */
export const KVP_BODY_SIZE = 4 + 4 + KVP_VALUE_STRUCT_SIZE;

export interface KvpRequest {
  operation: number;
  pool: number;
  /** ENUMERATE only. */
  index?: number;
  key?: string;
  value?: string;
}

export interface KvpItem {
  key: string;
  value: string;
}

/** UTF-16LE with its NUL, or null when it does not fit `max` bytes. */
export function utf16z(text: string, max: number): Uint8Array | null {
  const bytes = (text.length + 1) * 2;
  if (bytes > max) return null;
  const out = new Uint8Array(bytes);
  const v = new DataView(out.buffer);
  for (let i = 0; i < text.length; i++) v.setUint16(i * 2, text.charCodeAt(i), true);
  return out;
}

/** Decodes `size` bytes of UTF-16LE, dropping the NUL and anything after it. */
export function fromUtf16z(bytes: Uint8Array, size: number): string {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let s = '';
  for (let i = 0; i + 1 < size; i += 2) {
    const c = v.getUint16(i, true);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** The value struct; a GET names only its key (value_type and value_size stay 0 for the guest to fill). */
function putValueStruct(v: DataView, b: Uint8Array, at: number, key: Uint8Array, value: Uint8Array | null): void {
  if (value) v.setUint32(at, KvpValueType.String, true);
  v.setUint32(at + 4, key.length, true);
  v.setUint32(at + 8, value?.length ?? 0, true);
  b.set(key, at + 12);
  if (value) b.set(value, at + 12 + KVP_MAX_KEY_BYTES);
}

/** A KVP request body; throws RangeError when a key or value is too long for its field. */
export function encodeKvpRequest(r: KvpRequest): Uint8Array {
  const b = new Uint8Array(KVP_BODY_SIZE);
  const v = new DataView(b.buffer);
  v.setUint8(0, r.operation);
  v.setUint8(1, r.pool);
  const key = r.key === undefined ? null : utf16z(r.key, KVP_MAX_KEY_BYTES);
  const value = r.value === undefined ? null : utf16z(r.value, KVP_MAX_VALUE_BYTES);
  if (r.key !== undefined && key === null) throw new RangeError(`KVP key of ${r.key.length} characters exceeds ${KVP_MAX_KEY_BYTES} bytes of UTF-16`);
  if (r.value !== undefined && value === null) throw new RangeError(`KVP value of ${r.value.length} characters exceeds ${KVP_MAX_VALUE_BYTES} bytes of UTF-16`);
  switch (r.operation) {
    case KvpOperation.Get:
    case KvpOperation.Set:
      putValueStruct(v, b, 4, key ?? new Uint8Array(0), r.operation === KvpOperation.Set ? value : null);
      break;
    case KvpOperation.Delete:
      v.setUint32(4, key?.length ?? 0, true);
      if (key) b.set(key, 8);
      break;
    case KvpOperation.Enumerate:
      v.setUint32(4, r.index ?? 0, true);
      break;
  }
  return b;
}

/**
 * The item in a guest's GET or ENUMERATE answer. Sizes are the guest's claims: they must be
 * even, fit their fields and the bytes received.
 */
export function decodeKvpItem(body: Uint8Array, operation: number): KvpItem | { error: string } {
  const at = operation === KvpOperation.Enumerate ? 8 : 4;
  if (body.length < at + KVP_VALUE_STRUCT_SIZE) return { error: `KVP answer body of ${body.length} bytes` };
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const type = v.getUint32(at, true),
    keySize = v.getUint32(at + 4, true),
    valueSize = v.getUint32(at + 8, true);
  if (type !== KvpValueType.String) return { error: `KVP value type ${type} is not REG_SZ` };
  if (keySize > KVP_MAX_KEY_BYTES || valueSize > KVP_MAX_VALUE_BYTES || keySize & 1 || valueSize & 1) {
    return { error: `KVP sizes key ${keySize} / value ${valueSize} out of range` };
  }
  const keyAt = at + 12,
    valueAt = keyAt + KVP_MAX_KEY_BYTES;
  return {
    key: fromUtf16z(body.subarray(keyAt, keyAt + keySize), keySize),
    value: fromUtf16z(body.subarray(valueAt, valueAt + valueSize), valueSize),
  };
}
