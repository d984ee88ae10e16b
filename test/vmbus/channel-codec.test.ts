import { describe, expect, it } from 'vitest';
import { ChannelMessageType as T } from '../../vmbus/protocol/channel-constants.ts';
import { decodeChannelMessage } from '../../vmbus/protocol/channel-decode.ts';
import { encodeChannelMessage, encodeGpadl } from '../../vmbus/protocol/channel-encode.ts';
import { guidFromBytes, guidToBytes } from '../../vmbus/protocol/guid.ts';
import { loadChannelVectors, toHex } from './channel-vectors.ts';

const vectors = loadChannelVectors();

describe('VMBus channel message codec against the shared hex vectors', () => {
  it('has a vector for every message type the codec knows', () => {
    const types = new Set(vectors.map((v) => v.message.type));
    for (const t of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]) expect(types.has(t)).toBe(true);
  });

  for (const v of vectors) {
    it(`${v.name}: encodes to the vector bytes and decodes back`, () => {
      expect(toHex(encodeChannelMessage(v.message))).toBe(toHex(v.bytes));
      const d = decodeChannelMessage(v.bytes);
      expect(d).toEqual({ ok: true, message: v.message });
    });
  }

  it('OFFERCHANNEL is 196 bytes with relid @184 and connection id @192', () => {
    const v = vectors.find((x) => x.name.startsWith('offer-channel'))!;
    expect(v.bytes.length).toBe(196);
    const view = new DataView(v.bytes.buffer);
    expect(view.getUint32(184, true)).toBe(5);
    expect(view.getUint32(192, true)).toBe(21);
  });
});

describe('decoder errors are values', () => {
  const cases: [string, string, string][] = [
    ['empty', '', 'too-short'],
    ['short header', '0e0000', 'too-short'],
    ['unknown type', '63000000 00000000', 'unsupported-type'],
    ['modifychannel is not handled', '16000000 00000000 05000000 00000000', 'unsupported-type'],
    ['OPENCHANNEL truncated', '05000000 00000000 05000000', 'too-short'],
    ['OFFERCHANNEL 195 bytes', '01000000' + '00'.repeat(191), 'too-short'],
    ['GPADL_HEADER with a partial PFN', '08000000 00000000 05000000 01000000 1000 0100 00100000 00000000 0001', 'bad-length'],
    ['GPADL_BODY with a partial PFN', '09000000 00000000 00000000 01000000 00010000', 'bad-length'],
    ['longer than a SynIC payload', '03000000' + '00'.repeat(237), 'too-long'],
  ];
  for (const [name, hex, code] of cases) {
    it(name, () => {
      const d = decodeChannelMessage(Buffer.from(hex.replace(/ /g, ''), 'hex'));
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.error.code).toBe(code);
    });
  }

  it('accepts trailing bytes after a fixed layout (OpenChannel2 after OPENCHANNEL)', () => {
    const open = vectors.find((v) => v.name === 'open-channel')!;
    const longer = new Uint8Array(156);
    longer.set(open.bytes);
    expect(decodeChannelMessage(longer)).toEqual({ ok: true, message: open.message });
  });

  it('decodes from a private copy: later writes to the input do not change the result', () => {
    const bytes = vectors.find((v) => v.name === 'open-channel')!.bytes.slice();
    const d = decodeChannelMessage(bytes);
    bytes.fill(0xff);
    expect(d.ok && d.message.type === T.OpenChannel && d.message.userData[0]).toBe(0xaa);
  });
});

describe('GUID wire format (Linux guid_t)', () => {
  it('mixed-endian: SCSI ba6163d9-04a1-4d29-b605-72e2ffb1dc7f', () => {
    expect(toHex(guidToBytes('{BA6163D9-04A1-4D29-B605-72E2FFB1DC7F}')!)).toBe('d96361baa104294db60572e2ffb1dc7f');
    expect(guidFromBytes(Buffer.from('d96361baa104294db60572e2ffb1dc7f', 'hex'))).toBe('ba6163d9-04a1-4d29-b605-72e2ffb1dc7f');
  });
  it('rejects malformed text', () => {
    expect(guidToBytes('ba6163d9-04a1-4d29-b605-72e2ffb1dc7')).toBeNull();
    expect(guidToBytes('zz6163d9-04a1-4d29-b605-72e2ffb1dc7f')).toBeNull();
  });
});

describe('encodeGpadl splits like Linux create_gpadl_header', () => {
  it('26 PFNs in the header, 28 per body', () => {
    const pfns = Array.from({ length: 60 }, (_, i) => BigInt(0x100 + i));
    const msgs = encodeGpadl(7, 0xe1e10, pfns);
    expect(msgs.map((m) => m.length)).toEqual([28 + 26 * 8, 16 + 28 * 8, 16 + 6 * 8]);
    expect(msgs.every((m) => m.length <= 240)).toBe(true);
    const h = decodeChannelMessage(msgs[0]!);
    expect(h.ok && h.message.type === T.GpadlHeader && [h.message.rangeBufLen, h.message.byteCount]).toEqual([8 + 60 * 8, 60 * 4096]);
    const b = decodeChannelMessage(msgs[2]!);
    expect(b.ok && b.message.type === T.GpadlBody && b.message.pfns[5]).toBe(0x100n + 59n);
  });
});
