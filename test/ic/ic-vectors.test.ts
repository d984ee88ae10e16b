/**
 * test/vectors/ic/messages.json against both codecs: the host's (root-partition/vsp/ic) must
 * encode each request byte for byte and decode each answer; the guest's (child-sdk/drivers/ic-*,
 * AssemblyScript compiled in-process) must turn each request into the answer byte for byte.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileAssemblyScript } from '../helpers/compile-as.ts';
import {
  decodeIcMessage,
  decodeNegotiateResponse,
  encodeIcMessage,
  encodeNegotiate,
  IC_FRAMEWORK_VERSIONS,
  IcFlag,
  IcMessageType,
  type IcVersion,
} from '../../root-partition/vsp/ic/ic-protocol.ts';
import { decodeHeartbeat, decodeShutdown, encodeHeartbeat, encodeShutdown, encodeTimeSample, decodeTimeSample } from '../../root-partition/vsp/ic/ic-bodies.ts';
import { decodeKvpItem, encodeKvpRequest } from '../../root-partition/vsp/ic/kvp-protocol.ts';

interface Vector {
  name: string;
  request: string;
  answer: string;
  transactionId: number;
  [k: string]: unknown;
}
const { vectors } = JSON.parse(readFileSync(new URL('../vectors/ic/messages.json', import.meta.url), 'utf8')) as { vectors: Vector[] };
const vec = (name: string): Vector => vectors.find((v) => v.name === name)!;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const ver = (s: string): IcVersion => ({ major: Number(s.split('.')[0]), minor: Number(s.split('.')[1]) });

function request(type: number, message: IcVersion, transactionId: number, body: Uint8Array): string {
  return hex(
    encodeIcMessage(
      { framework: { major: 3, minor: 0 }, type, message, bodySize: body.length, status: 0, transactionId, flags: IcFlag.Transaction | IcFlag.Request },
      body,
    ),
  );
}

function answerOf(v: Vector) {
  const m = decodeIcMessage(bytes(v.answer));
  if (!m.ok) throw new Error(m.reason);
  expect(m.header.flags).toBe(IcFlag.Transaction | IcFlag.Response);
  expect(m.header.transactionId).toBe(v.transactionId);
  return m;
}

describe('IC vectors: host codec', () => {
  it('NEGOTIATE: encodes the offer, reads the choice or the refusal', () => {
    for (const name of ['negotiate heartbeat', 'negotiate kvp without a common version']) {
      const v = vec(name);
      const fw = (v.framework as string[]).map(ver),
        msgs = (v.messages as string[]).map(ver);
      expect(fw).toEqual(IC_FRAMEWORK_VERSIONS);
      expect(request(IcMessageType.Negotiate, { major: 0, minor: 0 }, v.transactionId, encodeNegotiate(fw, msgs))).toBe(v.request);
      const out = decodeNegotiateResponse(answerOf(v).body, fw, msgs);
      const chosen = v.chosen as string[] | null;
      expect(out).toEqual(
        chosen ? { ok: true, framework: ver(chosen[0]!), message: ver(chosen[1]!) } : { ok: false, reason: 'the guest supports none of the offered versions' },
      );
    }
  });

  it('heartbeat, shutdown, time sync', () => {
    const hb = vec('heartbeat');
    expect(request(IcMessageType.Heartbeat, ver('3.0'), hb.transactionId, encodeHeartbeat(BigInt(hb.sequence as string)))).toBe(hb.request);
    expect(decodeHeartbeat(answerOf(hb).body)).toEqual({ sequence: BigInt(hb.answerSequence as string), applicationState: hb.applicationState });
    for (const name of ['shutdown forced, accepted', 'shutdown with unknown flags, refused']) {
      const v = vec(name);
      const r = { reasonCode: v.reasonCode as number, timeoutSeconds: v.timeoutSeconds as number, flags: v.flags as number, message: v.message as string };
      expect(request(IcMessageType.Shutdown, ver('3.2'), v.transactionId, encodeShutdown(r))).toBe(v.request);
      expect(decodeShutdown(decodeIcMessage(bytes(v.request)).ok ? bytes(v.request).subarray(28) : new Uint8Array())).toEqual(r);
      expect(answerOf(v).header.status).toBe(v.status);
    }
    const ts = vec('timesync 4.0 sync sample');
    const sample = { parentTime: BigInt(ts.parentTime as string), referenceTime: BigInt(ts.referenceTime as string), flags: ts.flags as number };
    expect(request(IcMessageType.TimeSync, ver('4.0'), ts.transactionId, encodeTimeSample(sample, 4))).toBe(ts.request);
    expect(decodeTimeSample(answerOf(ts).body, 4)).toEqual({ ...sample, leapFlags: 0, stratum: 0 });
    const ts3 = vec('timesync 3.0 sample');
    const sample3 = { parentTime: BigInt(ts3.parentTime as string), referenceTime: 0n, flags: ts3.flags as number };
    expect(request(IcMessageType.TimeSync, ver('3.0'), ts3.transactionId, encodeTimeSample(sample3, 3))).toBe(ts3.request);
    expect(decodeTimeSample(answerOf(ts3).body, 3)).toEqual(sample3);
  });

  it('KVP: SET, GET, ENUMERATE, DELETE', () => {
    for (const v of vectors.filter((x) => x.name.startsWith('kvp'))) {
      const op = v.operation as number;
      const body = encodeKvpRequest({
        operation: op,
        pool: v.pool as number,
        index: v.index as number | undefined,
        key: op === 3 ? undefined : (v.key as string),
        value: op === 1 ? (v.value as string) : undefined,
      });
      expect(request(IcMessageType.KvpExchange, ver('4.0'), v.transactionId, body), v.name).toBe(v.request);
      const a = answerOf(v);
      expect(a.header.status, v.name).toBe(v.status);
      if ((op === 0 || op === 3) && v.status === 0) expect(decodeKvpItem(a.body, op)).toEqual({ key: v.key, value: v.value });
    }
  });

  it('refuses answers whose sizes lie', () => {
    const a = bytes(vec('heartbeat').answer);
    const v = new DataView(a.buffer);
    v.setUint32(4, 4096, true);
    expect(decodeIcMessage(a)).toMatchObject({ ok: false, reason: expect.stringMatching(/msgsize 4096/) });
    v.setUint32(4, 60, true);
    v.setUint16(18, 41, true);
    expect(decodeIcMessage(a)).toMatchObject({ ok: false, reason: expect.stringMatching(/icmsgsize 41/) });
    expect(decodeIcMessage(a.subarray(0, 27))).toMatchObject({ ok: false });
    const item = bytes(vec('kvp enumerate auto index 0').answer);
    new DataView(item.buffer).setUint32(28 + 12, 513, true); // key_size past the 512-byte field
    expect(decodeKvpItem(item.subarray(28), 3)).toEqual({ error: 'KVP sizes key 513 / value 16 out of range' });
  });
});

interface GuestCodec {
  memory: WebAssembly.Memory;
  icNegotiate(p: number, len: number, fw: number, fwCount: number, msg: number, msgCount: number): number;
  icHeartbeatAnswer(p: number, len: number, appState: number): void;
  icShutdownAnswer(p: number, len: number, accept: number): number;
  icTimeSyncApply(p: number, len: number, major: number, refNow: bigint, state: number): void;
  icTimeSyncNow(state: number, refNow: bigint): bigint;
  icMessageLength(p: number, received: number): number;
  icKvpAnswer(p: number, len: number, store: number): number;
  kvpPut(store: number, pool: number, key: number, keySize: number, value: number, valueSize: number): number;
}

const BUF = 0x200000,
  LISTS = 0x208000,
  STATE = 0x209000,
  TEXT = 0x20a000,
  STORE = 0x210000;
let g: GuestCodec;
let u8: Uint8Array;
let dv: DataView;

beforeAll(async () => {
  // Both files are entries, so the exports of each are the module's.
  const module = await compileAssemblyScript(new URL('../../child-sdk/drivers/ic-protocol.ts', import.meta.url).pathname, [
    new URL('../../child-sdk/drivers/ic-kvp-protocol.ts', import.meta.url).pathname,
  ]);
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 64, shared: true });
  g = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as GuestCodec;
  u8 = new Uint8Array(memory.buffer);
  dv = new DataView(memory.buffer);
}, 30_000);

/** Runs `answer` over the vector's request at BUF; returns the bytes it leaves there. */
function guestAnswers(v: Vector, answer: (len: number) => void): string {
  const req = bytes(v.request);
  u8.fill(0xee, BUF, BUF + req.length + 16);
  u8.set(req, BUF);
  expect(g.icMessageLength(BUF, req.length)).toBe(req.length);
  answer(req.length);
  return hex(u8.subarray(BUF, BUF + req.length));
}

describe('IC vectors: guest codec (AssemblyScript)', () => {
  it('answers NEGOTIATE in Linux preference order', () => {
    const versions = (at: number, list: number[]) => list.forEach((x, i) => dv.setUint32(at + 4 * i, x, true));
    versions(LISTS, [0x30000, 0x10000]); // framework 3.0, 1.0
    versions(LISTS + 16, [0x30000, 0x10000]); // heartbeat 3.0, 1.0
    versions(LISTS + 32, [0x40000, 0x30000]); // KVP 4.0, 3.0
    let chosen = 0;
    const hb = vec('negotiate heartbeat');
    expect(
      guestAnswers(hb, (len) => {
        chosen = g.icNegotiate(BUF, len, LISTS, 2, LISTS + 16, 2);
      }),
    ).toBe(hb.answer);
    expect(chosen).toBe(0x30000);
    const kvp = vec('negotiate kvp without a common version');
    expect(
      guestAnswers(kvp, (len) => {
        chosen = g.icNegotiate(BUF, len, LISTS, 2, LISTS + 32, 2);
      }),
    ).toBe(kvp.answer);
    expect(chosen).toBe(0);
  });

  it('answers heartbeat, shutdown and time sync', () => {
    const hb = vec('heartbeat');
    expect(guestAnswers(hb, (len) => g.icHeartbeatAnswer(BUF, len, 1))).toBe(hb.answer);
    const sd = vec('shutdown forced, accepted');
    expect(guestAnswers(sd, (len) => expect(g.icShutdownAnswer(BUF, len, 1)).toBe(1))).toBe(sd.answer);
    const bad = vec('shutdown with unknown flags, refused');
    expect(guestAnswers(bad, (len) => expect(g.icShutdownAnswer(BUF, len, 1)).toBe(0))).toBe(bad.answer);
    const ts = vec('timesync 4.0 sync sample');
    u8.fill(0, STATE, STATE + 32);
    expect(guestAnswers(ts, (len) => g.icTimeSyncApply(BUF, len, 4, 0n, STATE))).toBe(ts.answer);
    expect(dv.getBigUint64(STATE, true)).toBe(BigInt(ts.offset as string));
    // Below 4.0 the sample counts as current when it arrives (reference time 1000 here).
    const ts3 = vec('timesync 3.0 sample');
    expect(guestAnswers(ts3, (len) => g.icTimeSyncApply(BUF, len, 3, BigInt(ts3.referenceOnArrival as string), STATE + 64))).toBe(ts3.answer);
    expect(dv.getBigUint64(STATE + 64, true)).toBe(BigInt(ts3.offset as string));
    // UTC now = reference time now + offset: 1 s of reference time later, 1 s later in FILETIME.
    expect(BigInt.asUintN(64, g.icTimeSyncNow(STATE, 12345678n + 10_000_000n))).toBe(BigInt(ts.parentTime as string) + 10_000_000n);
  });

  it('answers the KVP sequence against its store', () => {
    u8.fill(0, STORE, STORE + 5 * 16 * 2568);
    const put = (at: number, s: string) => {
      for (let i = 0; i < s.length; i++) dv.setUint16(at + 2 * i, s.charCodeAt(i), true);
      dv.setUint16(at + 2 * s.length, 0, true);
      return 2 * s.length + 2;
    };
    const k = put(TEXT, 'OSName'),
      val = put(TEXT + 512, 'tsvisor');
    expect(g.kvpPut(STORE, 2, TEXT, k, TEXT + 512, val)).toBe(1);
    for (const v of vectors.filter((x) => x.name.startsWith('kvp'))) {
      let status = -1;
      expect(
        guestAnswers(v, (len) => {
          status = g.icKvpAnswer(BUF, len, STORE) >>> 0;
        }),
        v.name,
      ).toBe(v.answer);
      expect(status, v.name).toBe(v.status);
    }
  });

  it('refuses what does not fit: sizes past the bytes received, a key past its field', () => {
    const req = bytes(vec('kvp get external').request);
    u8.set(req, BUF);
    expect(g.icMessageLength(BUF, 100)).toBe(0); // msgsize says 2600
    dv.setUint32(BUF + 36, 514, true); // key_size 514 > 512
    expect(g.icKvpAnswer(BUF, req.length, STORE) >>> 0).toBe(0x80004005);
    dv.setUint16(BUF + 18, 4000, true); // icmsgsize beyond the message
    expect(g.icMessageLength(BUF, req.length)).toBe(0);
  });
});
