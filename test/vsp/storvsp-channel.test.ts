import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeSrbCompletion, decodeVstorHeader, NtStatus, SrbStatus } from '../../root-partition/vsp/storvsp/storvsp-protocol.ts';
import { fromHex, initPacket, makeRig, negotiate, packet, rangeAt, srbPacket, toHex, VMBUS_RQST_INIT } from './storvsp-test-guest.ts';

interface VectorStep {
  name: string;
  transactionId: string;
  request: string;
  completion: string;
  ranges?: { byteCount: number; byteOffset: number; pfns: number[] }[];
  fillGuest?: { gpa: number; length: number };
  expectGuestData?: { gpa: number; length?: number; hex?: string; pattern?: string };
}
const vectors = (name: string) =>
  JSON.parse(readFileSync(new URL(`../vectors/storvsp/${name}`, import.meta.url), 'utf8')) as {
    host?: { maxSubChannels: number; maxTransferBytes: number };
    steps: VectorStep[];
  };

const status = (p: Uint8Array): number => decodeVstorHeader(p).status;

describe('storvsp init sequence (hex vectors)', () => {
  it('answers each Linux init request with the exact completion bytes', () => {
    const v = vectors('init-sequence.json');
    const asked: number[] = [];
    const { channel } = makeRig({
      extra: {
        ...v.host,
        onCreateSubChannels: (n) => {
          asked.push(n);
          return true;
        },
      },
    });
    for (const step of v.steps) {
      const out = channel.handle(packet(fromHex(step.request), BigInt('0x' + step.transactionId)));
      expect(out?.kind, step.name).toBe('completion');
      expect(out?.transactionId, step.name).toBe(VMBUS_RQST_INIT);
      expect(toHex(out!.payload), step.name).toBe(step.completion);
    }
    expect(asked).toEqual([2]);
    expect(channel.isReady).toBe(true);
    expect(channel.protocolVersion).toBe(0x0602);
  });

  it('refuses out-of-order init steps with STATUS_INVALID_DEVICE_STATE and stays usable', () => {
    const { channel } = makeRig();
    expect(status(channel.handle(initPacket(10))!.payload)).toBe(NtStatus.InvalidDeviceState);
    expect(status(channel.handle(initPacket(8))!.payload)).toBe(NtStatus.InvalidDeviceState);
    expect(status(channel.handle(packet(srbPacket({ cdb: '000000000000' })))!.payload)).toBe(NtStatus.InvalidDeviceState);
    expect(status(channel.handle(initPacket(7))!.payload)).toBe(0);
    expect(status(channel.handle(initPacket(7))!.payload)).toBe(NtStatus.InvalidDeviceState);
    expect(status(channel.handle(initPacket(9, 0x0602))!.payload)).toBe(0);
    expect(status(channel.handle(initPacket(10))!.payload)).toBe(0);
    expect(status(channel.handle(packet(srbPacket({ cdb: '000000000000' })))!.payload)).toBe(NtStatus.InvalidDeviceState);
    expect(status(channel.handle(initPacket(8))!.payload)).toBe(0);
    expect(status(channel.handle(initPacket(9, 0x0602))!.payload)).toBe(NtStatus.InvalidDeviceState);
    expect(decodeSrbCompletion(channel.handle(packet(srbPacket({ cdb: '000000000000' })))!.payload).srbStatus).toBe(SrbStatus.Success);
  });

  it('refuses CREATE_SUB_CHANNELS beyond max_channel_cnt or when the framework declines', () => {
    const { channel } = makeRig({ extra: { onCreateSubChannels: () => false } });
    negotiate(channel);
    expect(status(channel.handle(initPacket(13, 5))!.payload)).toBe(NtStatus.InvalidParameter);
    expect(status(channel.handle(initPacket(13, 0))!.payload)).toBe(NtStatus.InvalidParameter);
    expect(status(channel.handle(initPacket(13, 2))!.payload)).toBe(NtStatus.InvalidParameter);
  });

  it('negotiates WIN8 (5.1) and pre-Win8 WIN7 (4.2) with the shorter packets', () => {
    const { channel } = makeRig();
    negotiate(channel, 0x0402);
    expect(channel.protocolVersion).toBe(0x0402);
    // A pre-Win8 guest sends 48-byte packets (vmscsi_request without the Win8 extension, 0x24 long).
    const req = srbPacket({ cdb: '000000000000', length: 0x24 }).slice(0, 48);
    const out = channel.handle(packet(req))!;
    expect(out.payload.length).toBe(48);
    expect(decodeSrbCompletion(out.payload).srbStatus).toBe(SrbStatus.Success);
    expect(channel.enumerateBus().payload.length).toBe(48);
  });
});

describe('storvsp SRBs (hex vectors)', () => {
  it('executes Linux-shaped SRBs and completes them with the exact bytes', () => {
    const v = vectors('srb.json') as ReturnType<typeof vectors> & { steps: VectorStep[] };
    const { channel, memory } = makeRig({ sectors: 2048 });
    negotiate(channel);
    for (const step of v.steps) {
      if (step.fillGuest) for (let i = 0; i < step.fillGuest.length; i++) memory.u8[step.fillGuest.gpa + i] = i & 0xff;
      const out = channel.handle(packet(fromHex(step.request), BigInt('0x' + step.transactionId), step.ranges))!;
      expect(out.transactionId, step.name).toBe(BigInt('0x' + step.transactionId));
      expect(toHex(out.payload), step.name).toBe(step.completion);
      const g = step.expectGuestData;
      if (g?.hex) expect(toHex(memory.read(g.gpa, g.hex.length / 2)), step.name).toBe(g.hex);
      if (g?.pattern) {
        const got = memory.read(g.gpa, g.length!);
        expect(
          got.every((b, i) => b === (i & 0xff)),
          step.name,
        ).toBe(true);
      }
    }
  });
});

describe('storvsp data path', () => {
  it('writes then reads back through the handler across LUNs, with unaligned multi-page ranges', () => {
    const { channel, memory, backends } = makeRig({ luns: [0, 1, 3] });
    negotiate(channel);
    const src = 0x10200; // not page aligned: 3 pages touched
    for (let i = 0; i < 8192; i++) memory.u8[src + i] = (i * 13 + 5) & 0xff;
    for (const lun of [0, 1, 3]) {
      const w = channel.handle(packet(srbPacket({ lun, cdb: `2a000000002000001000`, dataIn: 0, dataTransferLength: 8192 }), 10n, [rangeAt(src, 8192)]))!;
      expect(decodeSrbCompletion(w.payload)).toMatchObject({ srbStatus: 1, scsiStatus: 0, dataTransferLength: 8192 });
    }
    for (const [i, lun] of [0, 1, 3].entries()) {
      expect(toHex(backends[i]!.bytes.subarray(0x20 * 512, 0x20 * 512 + 8192))).toBe(toHex(memory.read(src, 8192)));
      const dst = 0x40000 + lun * 0x4000 + 0x800;
      const r = channel.handle(
        packet(srbPacket({ lun, cdb: `88000000000000000020000000100000`, dataIn: 1, dataTransferLength: 8192 }), 11n, [rangeAt(dst, 8192)]),
      )!;
      expect(decodeSrbCompletion(r.payload).dataTransferLength).toBe(8192);
      expect(toHex(memory.read(dst, 8192))).toBe(toHex(memory.read(src, 8192)));
    }
  });

  it('REPORT LUNS lists the LUNs of the addressed target; absent LUN 0 answers INQUIRY as not present', () => {
    const { channel, memory } = makeRig({ luns: [3, 1] });
    negotiate(channel);
    const out = channel.handle(packet(srbPacket({ cdb: 'a0000000000000000100 0000', dataIn: 1, dataTransferLength: 256 }), 1n, [rangeAt(0x8000, 256)]))!;
    expect(decodeSrbCompletion(out.payload)).toMatchObject({ srbStatus: 1, dataTransferLength: 24 });
    expect(toHex(memory.read(0x8000, 24))).toBe('0000001000000000' + '0001000000000000' + '0003000000000000');
    const inq = channel.handle(packet(srbPacket({ cdb: '120000002400', dataIn: 1, dataTransferLength: 36 }), 2n, [rangeAt(0x9000, 36)]))!;
    expect(decodeSrbCompletion(inq.payload).srbStatus).toBe(1);
    expect(memory.u8[0x9000]).toBe(0x7f);
    const other = channel.handle(
      packet(srbPacket({ targetId: 1, cdb: 'a0000000000000000100 0000', dataIn: 1, dataTransferLength: 256 }), 3n, [rangeAt(0x8000, 256)]),
    )!;
    expect(toHex(memory.read(0x8000, 8))).toBe('0000000000000000');
    expect(decodeSrbCompletion(other.payload).dataTransferLength).toBe(8);
  });

  it('completes a batch of 128 requests in flight in one call, in order, with their transaction ids', () => {
    const { channel, memory } = makeRig({ memoryBytes: 1 << 21 });
    negotiate(channel);
    const batch = Array.from({ length: 128 }, (_, i) => {
      const gpa = 0x10000 + i * 4096;
      memory.u8.fill(i, gpa, gpa + 512);
      return packet(srbPacket({ cdb: `2a00${i.toString(16).padStart(8, '0')}00000100`, dataIn: 0, dataTransferLength: 512 }), BigInt(1000 + i), [
        rangeAt(gpa, 512),
      ]);
    });
    const out = channel.handleBatch(batch);
    expect(out.map((o) => o.transactionId)).toEqual(batch.map((b) => b.transactionId));
    expect(out.every((o) => decodeSrbCompletion(o.payload).srbStatus === 1)).toBe(true);
    const reads = channel.handleBatch(
      Array.from({ length: 128 }, (_, i) =>
        packet(srbPacket({ cdb: `2800${i.toString(16).padStart(8, '0')}00000100`, dataIn: 1, dataTransferLength: 512 }), BigInt(i), [
          rangeAt(0x100000 + i * 512, 512),
        ]),
      ),
    );
    expect(reads).toHaveLength(128);
    for (let i = 0; i < 128; i++) expect(memory.u8[0x100000 + i * 512 + 511]).toBe(i);
  });

  it('a sub-channel serves I/O with the primary negotiation and the same disks', () => {
    const { channel, memory } = makeRig();
    expect(() => channel.openSubChannel()).toThrow();
    negotiate(channel);
    const sub = channel.openSubChannel();
    expect(sub.isReady).toBe(true);
    memory.u8.fill(0xab, 0x5000, 0x5200);
    sub.handle(packet(srbPacket({ cdb: '2a000000000700000100', dataIn: 0, dataTransferLength: 512 }), 1n, [rangeAt(0x5000, 512)]));
    channel.handle(packet(srbPacket({ cdb: '28000000000700000100', dataIn: 1, dataTransferLength: 512 }), 2n, [rangeAt(0x6000, 512)]));
    expect(memory.u8[0x61ff]).toBe(0xab);
    expect(status(sub.handle(initPacket(7))!.payload)).toBe(NtStatus.InvalidDeviceState);
  });
});
