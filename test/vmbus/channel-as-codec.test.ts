import { beforeAll, describe, expect, it } from 'vitest';
import { ChannelMessageType as T } from '../../vmbus/protocol/channel-constants.ts';
import { GPA, compileGuestChannel, instantiateGuestChannel, type GuestChannelExports } from './channel-as-guest.ts';
import { loadChannelVectors, toHex, vector } from './channel-vectors.ts';

let g: GuestChannelExports;
let mem: Uint8Array;
beforeAll(async () => {
  ({ g, bytes: mem } = instantiateGuestChannel(await compileGuestChannel()));
}, 60_000);

const out = GPA.out;
const produced = (length: number) => toHex(mem.slice(out, out + length));
const put = (at: number, bytes: Uint8Array) => {
  mem.set(bytes, at);
  return at;
};
const pfnBytes = (pfns: bigint[]) => {
  const b = new Uint8Array(8 * pfns.length);
  pfns.forEach((p, i) => new DataView(b.buffer).setBigUint64(8 * i, p, true));
  return b;
};

describe('guest (AssemblyScript) codec against the shared hex vectors', () => {
  it('checkChannelMessage accepts every vector as its type', () => {
    for (const v of loadChannelVectors()) {
      put(GPA.rx, v.bytes);
      expect([v.name, g.checkChannelMessage(GPA.rx, v.bytes.length)]).toEqual([v.name, v.message.type]);
    }
  });

  it("checkChannelMessage gives the host decoder's verdicts on malformed messages", () => {
    const cases: [string, number][] = [
      ['', -1],
      ['0e0000', -1],
      ['6300000000000000', -3],
      ['050000000000000005000000', -1],
      ['0800000000000000050000000100000010000100001000000000000000010000', -4],
      ['090000000000000000000000010000000001', -4],
    ];
    for (const [hex, code] of cases) {
      const b = Buffer.from(hex, 'hex');
      put(GPA.rx, b);
      expect([hex, g.checkChannelMessage(GPA.rx, b.length)]).toEqual([hex, code]);
    }
    expect(g.checkChannelMessage(GPA.rx, 241)).toBe(-2);
  });

  it('encodes the guest → host messages byte for byte', () => {
    const hex = (name: string) => toHex(vector(name).bytes);
    expect(produced(g.encodeInitiateContact(out, 0x50003, 0, 2, 0x123000, 0x124000))).toBe(hex('initiate-contact-v5_3'));
    expect(produced(g.encodeInitiateContact(out, 0x40000, 1, 0x5000, 0x6000, 0x7000))).toBe(hex('initiate-contact-v4_0'));
    expect(produced(g.encodeHeaderOnly(out, T.RequestOffers))).toBe(hex('request-offers'));
    expect(produced(g.encodeHeaderOnly(out, T.Unload))).toBe(hex('unload'));
    expect(produced(g.encodeRelidMessage(out, T.CloseChannel, 5))).toBe(hex('close-channel'));
    expect(produced(g.encodeRelidMessage(out, T.RelidReleased, 5))).toBe(hex('relid-released'));
    const userData = put(GPA.scratch, Uint8Array.from([0xaa, 0xbb, ...new Uint8Array(118)]));
    expect(produced(g.encodeOpenChannel(out, 5, 5, 0xe1e10, 1, 8, userData))).toBe(hex('open-channel'));
    const pfns = put(GPA.pfns, pfnBytes([0x100n, 0x101n, 0x1234567n]));
    expect(produced(g.encodeGpadlHeader(out, 5, 0xe1e10, 3, pfns, 3))).toBe(hex('gpadl-header-3-pages'));
    put(GPA.pfns, pfnBytes([0x200n, 0x201n]));
    expect(produced(g.encodeGpadlBody(out, 0, 0xe1e10, pfns, 2))).toBe(hex('gpadl-body'));
    expect(produced(g.encodeGpadlTeardown(out, 5, 0xe1e10))).toBe(hex('gpadl-teardown'));
  });

  it('reads the host → guest fields at the vector offsets', () => {
    const at = (name: string) => put(GPA.rx, vector(name).bytes);
    let m = at('version-response-supported-v5');
    expect([g.readU8(m, 8), g.readU8(m, 9), g.readU32(m, 12)]).toEqual([1, 0, 1]);
    m = at('offer-channel-scsi-subchannel');
    expect([g.readU16(m, 56), g.readU16(m, 58), g.readU16(m, 180), g.readU32(m, 184), g.readU8(m, 189), g.readU16(m, 190), g.readU32(m, 192)]).toEqual([
      4, 16, 1, 5, 0, 1, 21,
    ]);
    m = at('open-channel-result-invalid-parameter');
    expect([g.readU32(m, 8), g.readU32(m, 12), g.readU32(m, 16) >>> 0]).toEqual([5, 5, 0xc000000d]); // u32 results arrive as i32
    m = at('gpadl-created');
    expect([g.readU32(m, 8), g.readU32(m, 12), g.readU32(m, 16)]).toEqual([5, 0xe1e10, 0]);
    m = at('gpadl-torndown');
    expect(g.readU32(m, 8)).toBe(0xe1e10);
  });
});
