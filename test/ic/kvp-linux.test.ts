/**
 * The KVP host against Linux's KVP code (linux-kvp-guest.ts models hv_kvp.c and hv_kvp_daemon.c
 * byte for byte): the exact bytes of a host SET at struct hv_kvp_msg's offsets, the item landing in
 * the daemon's External pool, and GET, whose answer from Linux always has an empty value, still
 * returning the item's value (read from Linux's ENUMERATE).
 */
import { describe, expect, it } from 'vitest';
import type { HvError } from '../../hypervisor/hv-error.ts';
import { KvpVsp, KVP_MAX_ENUMERATE } from '../../root-partition/vsp/ic/kvp-vsp.ts';
import { encodeKvpRequest, KvpOperation, KvpPool } from '../../root-partition/vsp/ic/kvp-protocol.ts';
import { LinuxKvpGuest } from './linux-kvp-guest.ts';
import { scriptedGuest, type Sent } from './scripted-ic-guest.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const utf16z = (s: string) => hex(Buffer.from(`${s}\0`, 'utf16le'));

/** A KvpVsp negotiated at KVP 4.0 (what Linux picks) whose every later request `guest` answers. */
async function kvpAgainst(answer: (req: Sent) => Uint8Array | null) {
  const errors: HvError[] = [];
  const vsp = new KvpVsp({ requestTimeoutMs: 2000, log: (e) => errors.push(e) });
  let live = false;
  const requests: Sent[] = [];
  const g = scriptedGuest(vsp, (s) => {
    if (!live) return;
    requests.push(s);
    const a = answer(s);
    if (a) setImmediate(() => g.deliver(a, s.transId));
  });
  await g.negotiate([3, 0], [4, 0]);
  live = true;
  return { vsp, requests, errors };
}

describe('KVP against Linux hv_kvp and hv_kvp_daemon', () => {
  it('a host SET has the bytes of struct hv_kvp_msg: header, then hv_kvp_exchg_msg_value at 4', () => {
    const body = encodeKvpRequest({ operation: KvpOperation.Set, pool: KvpPool.External, key: 'tsvisor-owner', value: 'linux-vmms-test' });
    // operation 1 (KVP_OP_SET), pool 0 (KVP_POOL_EXTERNAL), pad; value_type 1 (REG_SZ), key_size 28 and
    // value_size 32: bytes of UTF-16 with the NUL (13 + 1 and 15 + 1 characters).
    expect(hex(body.subarray(0, 16))).toBe('01000000' + '01000000' + '1c000000' + '20000000');
    expect(hex(body.subarray(16, 16 + 28))).toBe(utf16z('tsvisor-owner'));
    expect(body.subarray(16 + 28, 528).every((b) => b === 0)).toBe(true);
    expect(hex(body.subarray(528, 528 + 32))).toBe(utf16z('linux-vmms-test'));
    expect(body.subarray(528 + 32).every((b) => b === 0)).toBe(true);
    // Every body has the size of the largest operation's (kvp_enum_data: index, then the value struct).
    expect(body.length).toBe(4 + 4 + 12 + 512 + 2048);
  });

  it('SET lands in the daemon pool; GET returns the value Linux leaves out of its answer; DELETE removes it', async () => {
    const linux = new LinuxKvpGuest();
    const { vsp, requests, errors } = await kvpAgainst((s) => linux.answer(s));
    expect(await vsp.set(KvpPool.External, 'tsvisor-owner', 'linux-vmms-test')).toEqual({ ok: true });
    // What the IC header says, then the daemon's record (key and value in UTF-8, NUL-terminated).
    // struct vmbuspipe_hdr: flags 1 (DATA), msgsize 2600 (icmsg_hdr and body); struct icmsg_hdr: icverframe 3.0,
    // icmsgtype 2 (KVPEXCHANGE), icvermsg 4.0, icmsgsize 2580, status 0, ictransaction_id, icflags TRANSACTION | REQUEST.
    const id = hex(requests[0]!.bytes.subarray(24, 25));
    expect(hex(requests[0]!.bytes.subarray(0, 28))).toBe(
      ['01000000', '280a0000', '0300', '0000', '0200', '0400', '0000', '140a', '00000000', id, '03', '0000'].join(''),
    );
    expect(linux.items(KvpPool.External)).toEqual([['tsvisor-owner', 'linux-vmms-test']]);
    expect(await vsp.set(KvpPool.External, 'second', 'two')).toEqual({ ok: true });
    const sent = requests.length;
    expect(await vsp.get(KvpPool.External, 'second')).toBe('two');
    // One GET (answered with an empty value), then ENUMERATE from index 0 until the key.
    expect(requests.slice(sent).map((r) => r.bytes[28])).toEqual([KvpOperation.Get, KvpOperation.Enumerate, KvpOperation.Enumerate]);
    expect(await vsp.get(KvpPool.External, 'tsvisor-owner')).toBe('linux-vmms-test');
    expect(await vsp.get(KvpPool.External, 'no-such-key')).toBeNull();
    // An item whose value is empty stays empty.
    expect(await vsp.set(KvpPool.External, 'empty', '')).toEqual({ ok: true });
    expect(await vsp.get(KvpPool.External, 'empty')).toBe('');
    expect(await vsp.delete(KvpPool.External, 'tsvisor-owner')).toEqual({ ok: true });
    expect(await vsp.get(KvpPool.External, 'tsvisor-owner')).toBeNull();
    expect(linux.items(KvpPool.External)).toEqual([
      ['second', 'two'],
      ['empty', ''],
    ]);
    expect(errors).toEqual([]);
    vsp.dispose();
  });

  it('a guest that answers GET empty and enumerates without end is asked at most KVP_MAX_ENUMERATE times', async () => {
    const linux = new LinuxKvpGuest();
    // Whatever index is asked, the guest names some other key.
    const { vsp, requests } = await kvpAgainst((s) => {
      const op = s.bytes[28];
      if (op === KvpOperation.Set || op === KvpOperation.Get) return linux.answer(s);
      const out = new Uint8Array(s.bytes);
      const v = new DataView(out.buffer, 28);
      v.setUint32(8, 1, true);
      v.setUint32(12, 4, true);
      v.setUint16(20, 0x78, true); // "x"
      v.setUint32(16, 2, true);
      out[25] = 0x5;
      return out;
    });
    await vsp.set(KvpPool.External, 'k', 'v');
    const sent = requests.length;
    expect(await vsp.get(KvpPool.External, 'k')).toBe('');
    expect(requests.length - sent).toBe(1 + KVP_MAX_ENUMERATE);
    vsp.dispose();
  });
});
