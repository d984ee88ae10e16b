import { describe, expect, it } from 'vitest';
import { decodeSrbCompletion, SrbStatus } from '../../root-partition/vsp/storvsp/storvsp-protocol.ts';
import { makeRig, negotiate, packet, rangeAt, srbPacket } from '../vsp/storvsp-test-guest.ts';

describe('storvsp hot path (no allocation per SRB)', () => {
  it('completions of one batch stay distinct although every SRB is encoded in one reply buffer', () => {
    const rig = makeRig();
    negotiate(rig.channel);
    rig.backends[0]!.bytes.fill(0x11, 0, 4096);
    const out = rig.channel.handleBatch([
      packet(srbPacket({ cdb: '28000000000000000100', dataIn: 1, dataTransferLength: 512 }), 1n, [rangeAt(0x2000, 512)]),
      packet(srbPacket({ cdb: '28000000000000000800', dataIn: 1, dataTransferLength: 4096 }), 2n, [rangeAt(0x3000, 4096)]),
      packet(srbPacket({ cdb: '28000000000000000100', dataIn: 1, dataTransferLength: 512 }), 3n, [rangeAt(0x1_0000_0000, 512)]),
    ]);
    expect(out.map((o) => o.transactionId)).toEqual([1n, 2n, 3n]);
    expect(out.map((o) => [decodeSrbCompletion(o.payload).srbStatus, decodeSrbCompletion(o.payload).dataTransferLength])).toEqual([
      [SrbStatus.Success, 512],
      [SrbStatus.Success, 4096],
      [SrbStatus.InvalidRequest, 0],
    ]);
    expect(rig.memory.u8[0x3fff]).toBe(0x11);
  });

  it("a reply handed out by handle() is the channel's buffer until the next request", () => {
    const rig = makeRig();
    negotiate(rig.channel);
    const first = rig.channel.handle(packet(srbPacket({ cdb: '000000000000' }), 1n))!;
    const copy = first.payload.slice();
    expect(decodeSrbCompletion(copy).srbStatus).toBe(SrbStatus.Success);
    rig.channel.handle(packet(srbPacket({ cdb: 'ff', dataIn: 2 }), 2n));
    expect(decodeSrbCompletion(first.payload).srbStatus).not.toBe(SrbStatus.Success);
  });
});
