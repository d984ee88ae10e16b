// Writes test/vectors/ic/messages.json: IC messages laid out byte by byte from the fields of
// Linux's structs (vmbuspipe_hdr, icmsg_hdr,
// icmsg_negotiate, heartbeat_msg_data, shutdown_msg_data, ictimesync_ref_data, hv_kvp_msg),
// deliberately without the host or guest codecs, so the vectors check both.
//   npx tsx test/vectors/ic/generate.ts
// Each answer is what a Linux guest sends back: the request's buffer rewritten in place.
import { writeFileSync } from 'node:fs';

class Bytes {
  readonly b: Uint8Array;
  readonly v: DataView;
  constructor(n: number) {
    this.b = new Uint8Array(n);
    this.v = new DataView(this.b.buffer);
  }
  u8(o: number, x: number) {
    this.v.setUint8(o, x);
    return this;
  }
  u16(o: number, x: number) {
    this.v.setUint16(o, x, true);
    return this;
  }
  u32(o: number, x: number) {
    this.v.setUint32(o, x >>> 0, true);
    return this;
  }
  u64(o: number, x: bigint) {
    this.v.setBigUint64(o, x, true);
    return this;
  }
  utf16z(o: number, s: string) {
    for (let i = 0; i < s.length; i++) this.u16(o + 2 * i, s.charCodeAt(i));
    return this;
  }
  copy() {
    const c = new Bytes(this.b.length);
    c.b.set(this.b);
    return c;
  }
  hex() {
    return Buffer.from(this.b).toString('hex');
  }
}

/** Pipe header (flags 1 = data, msgsize) + icmsg_hdr, body of `bodySize` bytes. */
function ic(type: number, fw: [number, number], ver: [number, number], bodySize: number, txid: number): Bytes {
  return new Bytes(28 + bodySize)
    .u32(0, 1)
    .u32(4, 20 + bodySize)
    .u16(8, fw[0])
    .u16(10, fw[1])
    .u16(12, type)
    .u16(14, ver[0])
    .u16(16, ver[1])
    .u16(18, bodySize)
    .u32(20, 0)
    .u8(24, txid)
    .u8(25, 0x1 | 0x2);
}
const answer = (m: Bytes, status: number) => m.u32(20, status).u8(25, 0x1 | 0x4);

const vectors: Record<string, unknown>[] = [];
const add = (name: string, params: Record<string, unknown>, req: Bytes, res: Bytes) => vectors.push({ name, ...params, request: req.hex(), answer: res.hex() });

// NEGOTIATE (heartbeat): framework 1.0, 3.0; message 1.0, 3.0. The guest takes 3.0 / 3.0.
{
  const req = ic(0, [3, 0], [0, 0], 8 + 16, 1)
    .u16(28, 2)
    .u16(30, 2)
    .u16(36, 1)
    .u16(40, 3)
    .u16(44, 1)
    .u16(48, 3);
  const res = answer(req.copy().u16(18, 16), 0).u16(28, 1).u16(30, 1).u16(36, 3).u16(38, 0).u16(40, 3).u16(42, 0);
  add('negotiate heartbeat', { service: 'heartbeat', framework: ['1.0', '3.0'], messages: ['1.0', '3.0'], transactionId: 1, chosen: ['3.0', '3.0'] }, req, res);
}
// NEGOTIATE (KVP) offering only 5.0: no common message version, counts 0/0 (Linux fw_error path).
{
  const req = ic(0, [3, 0], [0, 0], 8 + 12, 7)
    .u16(28, 2)
    .u16(30, 1)
    .u16(36, 1)
    .u16(40, 3)
    .u16(44, 5);
  const res = answer(req.copy().u16(18, 16), 0).u16(28, 0).u16(30, 0).u16(36, 3).u16(38, 0).u16(40, 0).u16(42, 0);
  add('negotiate kvp without a common version', { service: 'kvp', framework: ['1.0', '3.0'], messages: ['5.0'], transactionId: 7, chosen: null }, req, res);
}
// HEARTBEAT 3.0: seq 41 → 42, application_state 1 (healthy).
{
  const req = ic(1, [3, 0], [3, 0], 40, 2).u64(28, 41n);
  const res = answer(req.copy(), 0).u64(28, 42n).u32(36, 1);
  add('heartbeat', { sequence: '41', transactionId: 2, answerSequence: '42', applicationState: 1 }, req, res);
}
// SHUTDOWN 3.2: force, reason code 0x80000000 | planned, 30 s, message "maintenance" (UTF-8).
{
  const req = ic(3, [3, 0], [3, 2], 12 + 2048, 3)
    .u32(28, 0x80000000)
    .u32(32, 30)
    .u32(36, 1);
  new TextEncoder().encodeInto('maintenance', req.b.subarray(40));
  add(
    'shutdown forced, accepted',
    { reasonCode: 0x80000000, timeoutSeconds: 30, flags: 1, message: 'maintenance', transactionId: 3, status: 0 },
    req,
    answer(req.copy(), 0),
  );
  const bad = ic(3, [3, 0], [3, 2], 12 + 2048, 4).u32(36, 8);
  add(
    'shutdown with unknown flags, refused',
    { reasonCode: 0, timeoutSeconds: 0, flags: 8, message: '', transactionId: 4, status: 0x80004005 },
    bad,
    answer(bad.copy(), 0x80004005),
  );
}
// TIMESYNC 4.0 SYNC: parenttime 2026-01-01T00:00:00Z as FILETIME, vmreferencetime 12345678.
{
  const parent = 116444736000000000n + BigInt(Date.UTC(2026, 0, 1)) * 10000n;
  const req = ic(4, [3, 0], [4, 0], 32, 5).u64(28, parent).u64(36, 12345678n).u8(44, 1);
  add(
    'timesync 4.0 sync sample',
    { parentTime: parent.toString(), referenceTime: '12345678', flags: 1, transactionId: 5, offset: (parent - 12345678n).toString() },
    req,
    answer(req.copy(), 0),
  );
}
// TIMESYNC 3.0 SAMPLE: ictimesync_data, childtime and roundtriptime 0 from the host, flags @24.
{
  const parent = 116444736000000000n + BigInt(Date.UTC(2026, 0, 1, 0, 0, 5)) * 10000n;
  const req = ic(4, [3, 0], [3, 0], 32, 6).u64(28, parent).u8(52, 2);
  add(
    'timesync 3.0 sample',
    { parentTime: parent.toString(), referenceTime: '0', flags: 2, transactionId: 6, referenceOnArrival: '1000', offset: (parent - 1000n).toString() },
    req,
    answer(req.copy(), 0),
  );
}
// KVP 4.0. Body: hv_kvp_hdr (operation, pool), then the op's struct; every request 2580 bytes.
const KVP = 2580;
const kvp = (op: number, pool: number, txid: number) => ic(2, [3, 0], [4, 0], KVP, txid).u8(28, op).u8(29, pool);
{
  // SET pool 0 (External) HostGreeting = "hello": value struct @4: type 1, key_size 26, value_size 12.
  const req = kvp(1, 0, 10)
    .u32(32, 1)
    .u32(36, 26)
    .u32(40, 12)
    .utf16z(44, 'HostGreeting')
    .utf16z(44 + 512, 'hello');
  add('kvp set external', { operation: 1, pool: 0, key: 'HostGreeting', value: 'hello', transactionId: 10, status: 0 }, req, answer(req.copy(), 0));
  // GET pool 0 HostGreeting: the guest fills value_type, value_size and the value.
  const get = kvp(0, 0, 11).u32(36, 26).utf16z(44, 'HostGreeting');
  add(
    'kvp get external',
    { operation: 0, pool: 0, key: 'HostGreeting', transactionId: 11, status: 0, value: 'hello' },
    get,
    answer(get.copy(), 0)
      .u32(32, 1)
      .u32(40, 12)
      .utf16z(44 + 512, 'hello'),
  );
  // ENUMERATE pool 2 (Auto: guest intrinsic), index 0 → OSName = "tsvisor"; index 1 → NO_MORE_ITEMS.
  const e0 = kvp(3, 2, 12).u32(32, 0);
  add(
    'kvp enumerate auto index 0',
    { operation: 3, pool: 2, index: 0, transactionId: 12, status: 0, key: 'OSName', value: 'tsvisor' },
    e0,
    answer(e0.copy(), 0)
      .u32(36, 1)
      .u32(40, 14)
      .u32(44, 16)
      .utf16z(48, 'OSName')
      .utf16z(48 + 512, 'tsvisor'),
  );
  const e1 = kvp(3, 2, 13).u32(32, 1);
  add('kvp enumerate auto index 1', { operation: 3, pool: 2, index: 1, transactionId: 13, status: 0x80070103 }, e1, answer(e1.copy(), 0x80070103));
  // DELETE pool 1 (Guest): the guest's own pool, refused.
  const del = kvp(2, 1, 14).u32(32, 22).utf16z(36, 'GuestState');
  add(
    'kvp delete in a guest pool, refused',
    { operation: 2, pool: 1, key: 'GuestState', transactionId: 14, status: 0x80004005 },
    del,
    answer(del.copy(), 0x80004005),
  );
}

const out = {
  description:
    'IC messages (pipe header + icmsg_hdr + body) as the host sends them and as a Linux-compatible guest answers them in place. Laid out by offset from Linux include/linux/hyperv.h by generate.ts; the KVP guest store holds Auto OSName = "tsvisor" and, after the SET, External HostGreeting = "hello".',
  vectors,
};
writeFileSync(new URL('messages.json', import.meta.url), JSON.stringify(out, null, 1) + '\n');
console.log(`${vectors.length} vectors`);
