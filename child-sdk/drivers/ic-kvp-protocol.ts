// KVP exchange, guest side: the item store and the in-place answers to GET / SET / DELETE /
// ENUMERATE (Linux hv_kvp.c and tools/hv/hv_kvp_daemon.c; include/uapi/linux/hyperv.h).
// Host copy and the body layout: root-partition/vsp/ic/kvp-protocol.ts. Keys and values are
// UTF-16LE with their NUL; sizes count bytes including it.
import { IC_E_FAIL, IC_HEADER_SIZE, IC_NO_MORE_ITEMS, IC_NOT_SUPPORTED, IC_S_OK, icAnswer, icBodySize } from "./ic-protocol";

/** hv_kvp_msg operations the guest answers (Linux KVP_OP_*); GET_IP_INFO / SET_IP_INFO get NOT_SUPPORTED. */
export const KVP_OP_GET: u32 = 0;
export const KVP_OP_SET: u32 = 1;
export const KVP_OP_DELETE: u32 = 2;
export const KVP_OP_ENUMERATE: u32 = 3;

/** Pools (Linux KVP_POOL_*): External host → guest, Guest guest → host, Auto guest intrinsic, AutoExternal host intrinsic. */
export const KVP_POOL_EXTERNAL: u32 = 0;
export const KVP_POOL_GUEST: u32 = 1;
export const KVP_POOL_AUTO: u32 = 2;
export const KVP_POOL_AUTO_EXTERNAL: u32 = 3;
export const KVP_POOL_AUTO_INTERNAL: u32 = 4;
export const KVP_POOL_COUNT: u32 = 5;

/** Value type and size limits of a KVP item (Linux REG_SZ, HV_KVP_EXCHANGE_MAX_KEY_SIZE / _VALUE_SIZE), in bytes. */
export const KVP_REG_SZ: u32 = 1;
export const KVP_MAX_KEY_BYTES: u32 = 512;
export const KVP_MAX_VALUE_BYTES: u32 = 2048;
const VALUE_STRUCT: u32 = 12 + KVP_MAX_KEY_BYTES + KVP_MAX_VALUE_BYTES;

/** Items each pool holds (the Linux daemon grows its pools; a fixed table keeps the guest allocation-free). */
export const KVP_SLOTS: u32 = 16;
// Slot: [0] key_size u32 (0 = free), [4] value_size u32, [8] key[512], [520] value[2048].
export const KVP_SLOT_SIZE: u32 = 8 + KVP_MAX_KEY_BYTES + KVP_MAX_VALUE_BYTES;
/** Bytes of a store: every pool's slots. */
export const KVP_STORE_SIZE: u32 = KVP_POOL_COUNT * KVP_SLOTS * KVP_SLOT_SIZE;

/** Address of slot `i` (< KVP_SLOTS) of `pool` in the store at `items`; no bounds check. */
export function kvpSlot(items: usize, pool: u32, i: u32): usize {
  return items + <usize>((pool * KVP_SLOTS + i) * KVP_SLOT_SIZE);
}
/** Key size in bytes (NUL included) of the item in `slot`; 0 when the slot is free. */
export function kvpSlotKeySize(slot: usize): u32 { return load<u32>(slot); }
/** Value size in bytes (NUL included) of the item in `slot`. */
export function kvpSlotValueSize(slot: usize): u32 { return load<u32>(slot, 4); }
/** Address of the slot's key (UTF-16LE, KVP_MAX_KEY_BYTES reserved). */
export function kvpSlotKey(slot: usize): usize { return slot + 8; }
/** Address of the slot's value (UTF-16LE, KVP_MAX_VALUE_BYTES reserved). */
export function kvpSlotValue(slot: usize): usize { return slot + 8 + KVP_MAX_KEY_BYTES; }

/** The slot holding `key` (`keySize` bytes of UTF-16 at `key`) in `pool`, or 0. */
export function kvpFind(items: usize, pool: u32, key: usize, keySize: u32): usize {
  for (let i: u32 = 0; i < KVP_SLOTS; i++) {
    const s = kvpSlot(items, pool, i);
    if (load<u32>(s) == keySize && memory.compare(s + 8, key, keySize) == 0) return s;
  }
  return 0;
}

/** Adds or replaces an item; false when the pool is full or a size is out of range. */
export function kvpPut(items: usize, pool: u32, key: usize, keySize: u32, value: usize, valueSize: u32): bool {
  if (pool >= KVP_POOL_COUNT || keySize < 2 || keySize > KVP_MAX_KEY_BYTES || valueSize > KVP_MAX_VALUE_BYTES) return false;
  let s = kvpFind(items, pool, key, keySize);
  for (let i: u32 = 0; i < KVP_SLOTS && s == 0; i++) {
    const c = kvpSlot(items, pool, i);
    if (load<u32>(c) == 0) s = c;
  }
  if (s == 0) return false;
  memory.fill(s + 8, 0, KVP_MAX_KEY_BYTES + KVP_MAX_VALUE_BYTES);
  store<u32>(s, keySize);
  store<u32>(s, valueSize, 4);
  memory.copy(s + 8, key, keySize);
  memory.copy(s + 8 + KVP_MAX_KEY_BYTES, value, valueSize);
  return true;
}

/** Adds an item from two strings (AssemblyScript strings are UTF-16 already; the NUL is added). */
export function kvpPutString(items: usize, pool: u32, key: string, value: string, scratch: usize): bool {
  const k = <u32>key.length << 1, v = <u32>value.length << 1;
  if (k + 2 > KVP_MAX_KEY_BYTES || v + 2 > KVP_MAX_VALUE_BYTES) return false;
  memory.copy(scratch, changetype<usize>(key), k);
  store<u16>(scratch + k, 0);
  memory.copy(scratch + KVP_MAX_KEY_BYTES, changetype<usize>(value), v);
  store<u16>(scratch + KVP_MAX_KEY_BYTES + v, 0);
  return kvpPut(items, pool, scratch, k + 2, scratch + KVP_MAX_KEY_BYTES, v + 2);
}

/** Pools the host may write: its own (External, AutoExternal). The guest's pools are the guest's. */
function hostWritable(pool: u32): bool { return pool == KVP_POOL_EXTERNAL || pool == KVP_POOL_AUTO_EXTERNAL; }

function validKeySize(n: u32): bool { return n >= 2 && n <= KVP_MAX_KEY_BYTES && (n & 1) == 0; }

/**
 * Answers one KVP request in place against `items` (a store of KVP_STORE_SIZE bytes). Returns
 * the status written. SET and DELETE are refused (E_FAIL) on pools the guest owns; a missing key
 * is E_FAIL (as the Linux daemon answers); ENUMERATE past the last item is NO_MORE_ITEMS.
 */
export function icKvpAnswer(p: usize, length: u32, items: usize): u32 {
  const body = p + IC_HEADER_SIZE;
  const size = icBodySize(p);
  let status = IC_E_FAIL;
  if (length < IC_HEADER_SIZE + 8 || size < 8 || IC_HEADER_SIZE + size > length) {
    icAnswer(p, status);
    return status;
  }
  const op = <u32>load<u8>(body), pool = <u32>load<u8>(body, 1);
  if (pool >= KVP_POOL_COUNT) {
    icAnswer(p, status);
    return status;
  }
  if (op == KVP_OP_GET || op == KVP_OP_SET) {
    const keySize = size >= 4 + VALUE_STRUCT ? load<u32>(body, 8) : 0;
    const valueSize = size >= 4 + VALUE_STRUCT ? load<u32>(body, 12) : 0;
    const key = body + 16, value = body + 16 + KVP_MAX_KEY_BYTES;
    if (validKeySize(keySize) && valueSize <= KVP_MAX_VALUE_BYTES && (valueSize & 1) == 0) {
      if (op == KVP_OP_SET) {
        if (hostWritable(pool) && kvpPut(items, pool, key, keySize, value, valueSize)) status = IC_S_OK;
      } else {
        const s = kvpFind(items, pool, key, keySize);
        if (s != 0) {
          store<u32>(body, KVP_REG_SZ, 4);
          store<u32>(body, kvpSlotValueSize(s), 12);
          memory.copy(value, kvpSlotValue(s), KVP_MAX_VALUE_BYTES);
          status = IC_S_OK;
        }
      }
    }
  } else if (op == KVP_OP_DELETE) {
    const keySize = size >= 8 + KVP_MAX_KEY_BYTES ? load<u32>(body, 4) : 0;
    if (validKeySize(keySize) && hostWritable(pool)) {
      const s = kvpFind(items, pool, body + 8, keySize);
      if (s != 0) {
        memory.fill(s, 0, KVP_SLOT_SIZE);
        status = IC_S_OK;
      }
    }
  } else if (op == KVP_OP_ENUMERATE) {
    if (size >= 8 + VALUE_STRUCT) {
      const index = load<u32>(body, 4);
      let seen: u32 = 0, found: usize = 0;
      for (let i: u32 = 0; i < KVP_SLOTS && found == 0; i++) {
        const s = kvpSlot(items, pool, i);
        if (load<u32>(s) != 0 && seen++ == index) found = s;
      }
      if (found == 0) status = IC_NO_MORE_ITEMS;
      else {
        store<u32>(body, KVP_REG_SZ, 8);
        store<u32>(body, kvpSlotKeySize(found), 12);
        store<u32>(body, kvpSlotValueSize(found), 16);
        memory.copy(body + 20, kvpSlotKey(found), KVP_MAX_KEY_BYTES + KVP_MAX_VALUE_BYTES);
        status = IC_S_OK;
      }
    }
  } else {
    status = IC_NOT_SUPPORTED; // GET_IP_INFO / SET_IP_INFO: no network configuration to report
  }
  icAnswer(p, status);
  return status;
}
