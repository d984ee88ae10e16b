import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import {
  ReceivedPacket,
  VmbusPacketType,
  VmbusRing,
  RING_FEAT_PENDING_SEND_SZ,
  encodeGpaDirectHeader,
  decodeGpaDirectHeader,
  encodeTransferPageHeader,
  decodeTransferPageHeader,
} from '../../vmbus/ring/index.ts';

const CONTROL = 0x1000;

function makeRing(dataSize: number): VmbusRing {
  const mem = new GuestMemory(65536);
  const ring = VmbusRing.create(mem, CONTROL, dataSize);
  if (!(ring instanceof VmbusRing)) throw new Error(ring.reason);
  return ring;
}

function dataHex(ring: VmbusRing): string {
  return Buffer.from(ring.mem.u8.subarray(ring.dataGpa, ring.dataGpa + ring.dataSize)).toString('hex');
}

const ascii = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

describe('host VMBus ring: exact bytes (hand-computed)', () => {
  it('frames, wraps a split descriptor and signals only on empty→non-empty', () => {
    const ring = makeRing(64);
    let w = ring.writer();
    expect(w.tryWrite({ type: VmbusPacketType.DataInband, flags: 1, transactionId: 0x0102030405060708n, payload: ascii('abc') })).toBe(true);
    // never-full: 32 bytes free, a 32-byte packet needs strictly more
    expect(w.tryWrite({ type: VmbusPacketType.DataInband, payload: ascii('abc') })).toBe(false);
    expect(w.neededBytes).toBe(32);
    expect(w.commit()).toBe(true);
    expect(ring.writeIndex()).toBe(32);
    expect(dataHex(ring).slice(0, 64)).toBe('0600020003000100' + '0807060504030201' + '6162630000000000' + '0000000000000000');

    const r = ring.reader();
    const pkt = new ReceivedPacket(4096);
    const got = r.tryRead(pkt);
    expect(got).toBe(pkt);
    expect(pkt.type).toBe(6);
    expect(pkt.flags).toBe(1);
    expect(pkt.transactionId).toBe(0x0102030405060708n);
    expect(Buffer.from(pkt.payload()).toString('hex')).toBe('6162630000000000');
    expect(r.tryRead(pkt)).toBe(null);
    expect(r.commit()).toBe(false);
    expect(ring.readIndex()).toBe(32);

    w = ring.writer();
    expect(w.tryWrite({ type: VmbusPacketType.Completion, transactionId: 5 })).toBe(true);
    expect(w.commit()).toBe(true); // read_index 32 == start 32: was empty
    w = ring.writer();
    expect(w.tryWrite({ type: VmbusPacketType.DataInband, payload: ascii('12345678') })).toBe(true);
    expect(w.commit()).toBe(false); // not empty before: no signal
    expect(ring.writeIndex()).toBe(24);
    expect(dataHex(ring)).toBe(
      '0000000000000000' +
        '3132333435363738' +
        '0000000038000000' +
        '0000000000000000' +
        '0b00020002000000' +
        '0500000000000000' +
        '0000000020000000' +
        '0600020003000000',
    );

    const r2 = ring.reader();
    expect(r2.tryRead(pkt)).toBe(pkt);
    expect(pkt.type).toBe(11);
    expect(pkt.transactionId).toBe(5n);
    expect(pkt.payloadLength).toBe(0);
    expect(r2.tryRead(pkt)).toBe(pkt);
    expect(Buffer.from(pkt.payload()).toString()).toBe('12345678');
    expect(r2.tryRead(pkt)).toBe(null);
    r2.commit();
    expect(ring.readIndex()).toBe(24);
  });

  it('does not signal while the consumer masks interrupts; unmask reports what arrived meanwhile', () => {
    const ring = makeRing(256);
    ring.maskInterrupt();
    const w = ring.writer();
    w.tryWrite({ type: VmbusPacketType.DataInband, payload: ascii('x') });
    expect(w.commit()).toBe(false);
    expect(ring.unmaskInterrupt()).toBe(true);
    const r = ring.reader();
    const pkt = new ReceivedPacket(256);
    expect(r.tryRead(pkt)).toBe(pkt);
    r.commit();
    expect(ring.unmaskInterrupt()).toBe(false);
  });

  it('wakes a blocked producer only when free space crosses pending_send_sz', () => {
    const ring = makeRing(128);
    ring.initAsProducer();
    expect(ring.featureBits()).toBe(RING_FEAT_PENDING_SEND_SZ);
    const payload = new Uint8Array(16); // total 40 bytes per packet
    let w = ring.writer();
    let n = 0;
    while (w.tryWrite({ type: VmbusPacketType.DataInband, payload })) n++;
    expect(n).toBe(3); // 120 would leave free 8: refused
    expect(w.commit()).toBe(true);
    expect(ring.requestSpace(w.neededBytes)).toBe(false);
    expect(ring.pendingSendSize()).toBe(40);
    // free is 8; reading one packet makes it 48 > 40: signal
    const r = ring.reader();
    const pkt = new ReceivedPacket(256);
    expect(r.tryRead(pkt)).toBe(pkt);
    expect(r.commit()).toBe(true);
    // a second batch finds the producer no longer blocked before it: no signal
    expect(r.tryRead(pkt)).toBe(pkt);
    expect(r.commit()).toBe(false);
    w = ring.writer();
    expect(w.tryWrite({ type: VmbusPacketType.DataInband, payload })).toBe(true);
    w.commit();
    expect(ring.pendingSendSize()).toBe(0);
  });

  it('without FEAT_PENDING_SEND_SZ the reader never signals the producer', () => {
    const ring = makeRing(128);
    const w = ring.writer();
    while (w.tryWrite({ type: VmbusPacketType.DataInband, payload: new Uint8Array(16) }));
    w.commit();
    ring.requestSpace(w.neededBytes);
    const r = ring.reader();
    r.tryRead(new ReceivedPacket(256));
    expect(r.commit()).toBe(false);
  });

  it('requestSpace clears pending_send_sz when space appeared meanwhile', () => {
    const ring = makeRing(128);
    expect(ring.requestSpace(40)).toBe(true);
    expect(ring.pendingSendSize()).toBe(0);
  });

  it('rejects bad layouts as values', () => {
    const mem = new GuestMemory(65536);
    expect(VmbusRing.create(mem, 0x1001, 4096)).toMatchObject({ kind: 'invalid-layout' });
    expect(VmbusRing.create(mem, 0x1000, 4100)).toMatchObject({ kind: 'invalid-layout' });
    expect(VmbusRing.create(mem, 0x1000, 32)).toMatchObject({ kind: 'invalid-layout' });
    expect(VmbusRing.create(mem, 0xf000, 4096)).toMatchObject({ kind: 'invalid-layout' });
    expect(VmbusRing.create(mem, 0xe000, 4096)).toBeInstanceOf(VmbusRing);
  });

  it('throws for a host packet the ring can never carry', () => {
    const ring = makeRing(64);
    expect(() => ring.writer().tryWrite({ type: VmbusPacketType.DataInband, payload: new Uint8Array(33) })).toThrow(/exceeds/);
  });

  it('reports corrupt control indices and descriptors as values', () => {
    const ring = makeRing(64);
    const i32 = ring.mem.i32;
    const pkt = new ReceivedPacket(64);
    Atomics.store(i32, ring.writeIndexWord, 12);
    expect(ring.reader().tryRead(pkt)).toMatchObject({ kind: 'corrupt' });
    Atomics.store(i32, ring.writeIndexWord, 64);
    expect(ring.reader().tryRead(pkt)).toMatchObject({ kind: 'corrupt' });
    expect(ring.writer().tryWrite({ type: 6 })).toBe(false);
    Atomics.store(i32, ring.writeIndexWord, 32);
    const d = ring.mem.dv;
    const put = (desc: string) => ring.mem.u8.set(Buffer.from(desc, 'hex'), ring.dataGpa);
    put('0600010003000000'); // offset8 1
    expect(ring.reader().tryRead(pkt)).toMatchObject({ kind: 'corrupt', reason: expect.stringMatching(/offset8/) });
    put('0600030002000000'); // len8 < offset8
    expect(ring.reader().tryRead(pkt)).toMatchObject({ kind: 'corrupt', reason: expect.stringMatching(/len8/) });
    put('0600020004000000'); // 32 + 8 > 32 written
    expect(ring.reader().tryRead(pkt)).toMatchObject({ kind: 'corrupt', reason: expect.stringMatching(/overruns/) });
    put('0600020003000200'); // undefined flag bit
    expect(ring.reader().tryRead(pkt)).toMatchObject({ kind: 'corrupt', reason: expect.stringMatching(/flags/) });
    put('0800020003000000'); // type 8 not accepted
    expect(ring.reader().tryRead(pkt)).toMatchObject({ kind: 'corrupt', reason: expect.stringMatching(/type/) });
    put('0900020003000000'); // GPA direct without range header
    expect(ring.reader().tryRead(pkt)).toMatchObject({ kind: 'corrupt', reason: expect.stringMatching(/range header/) });
    put('0600020003000000');
    expect(ring.reader().tryRead(new ReceivedPacket(16))).toMatchObject({ kind: 'corrupt', reason: expect.stringMatching(/receive limit/) });
    expect(ring.reader().tryRead(pkt)).toBe(pkt);
    expect(d.getUint32(ring.controlGpa + 4, true)).toBe(0); // nothing published without commit
  });
});

describe('extended headers', () => {
  it('encodes and decodes a GPA-direct range (struct vmbus_packet_mpb_array)', () => {
    const header = encodeGpaDirectHeader([{ byteCount: 0x1800, byteOffset: 0x10, pfns: [0x123, 0x1_0000_0124] }]);
    expect(Buffer.from(header).toString('hex')).toBe('00000000' + '01000000' + '00180000' + '10000000' + '2301000000000000' + '2401000001000000');
    const ring = makeRing(256);
    const w = ring.writer();
    w.tryWrite({ type: VmbusPacketType.DataUsingGpaDirect, flags: 1, transactionId: 9, header, payload: ascii('cdb') });
    w.commit();
    const pkt = new ReceivedPacket(256);
    expect(ring.reader().tryRead(pkt)).toBe(pkt);
    expect(pkt.offset8).toBe(6); // (24 + 8 + 2 × 8) / 8
    expect(decodeGpaDirectHeader(pkt)).toEqual([{ byteCount: 0x1800, byteOffset: 0x10, pfns: [0x123, 0x1_0000_0124] }]);
    pkt.view.setUint32(28, 0x1000, true); // byte_offset ≥ page size
    expect(decodeGpaDirectHeader(pkt)).toMatchObject({ kind: 'malformed' });
    pkt.view.setUint32(28, 0x10, true);
    pkt.view.setUint32(24, 0x3000, true); // would need 4 PFNs, header holds 2
    expect(decodeGpaDirectHeader(pkt)).toMatchObject({ kind: 'malformed' });
    pkt.view.setUint32(20, 0, true);
    expect(decodeGpaDirectHeader(pkt)).toMatchObject({ kind: 'malformed', reason: expect.stringMatching(/range_count 0/) });
  });

  it('encodes and decodes a transfer-page header (struct vmtransfer_page_packet_header)', () => {
    const header = encodeTransferPageHeader({ transferPageSetId: 0xcafe, senderOwnsSet: true, ranges: [{ byteCount: 1514, byteOffset: 0x2000 }] });
    expect(Buffer.from(header).toString('hex')).toBe('feca0100' + '01000000' + 'ea050000' + '00200000');
    const ring = makeRing(256);
    const w = ring.writer();
    w.tryWrite({ type: VmbusPacketType.DataUsingTransferPages, header, payload: new Uint8Array(8) });
    w.commit();
    const pkt = new ReceivedPacket(256);
    expect(ring.reader().tryRead(pkt)).toBe(pkt);
    expect(decodeTransferPageHeader(pkt)).toEqual({ transferPageSetId: 0xcafe, senderOwnsSet: true, ranges: [{ byteCount: 1514, byteOffset: 0x2000 }] });
    pkt.view.setUint32(20, 5, true);
    expect(decodeTransferPageHeader(pkt)).toMatchObject({ kind: 'malformed' });
  });
});
