/**
 * Init requests shorter than a vstor_packet: the reply has the request's size (capped at a
 * vstor_packet), so a reply that must carry data the request's size cannot hold is refused
 * instead of written past its end. Found by the storvsp fuzz target (fuzz/regressions/storvsp).
 */
import { describe, expect, it } from 'vitest';
import { NtStatus } from '../../root-partition/vsp/storvsp/storvsp-protocol.ts';
import { initPacket, makeRig, packet } from './storvsp-test-guest.ts';

const statusOf = (payload: Uint8Array) => new DataView(payload.buffer, payload.byteOffset).getUint32(8, true);

describe('storvsp: short init requests', () => {
  it('QUERY_PROPERTIES too short for the properties is refused, and a full one then succeeds', () => {
    const { channel } = makeRig();
    for (const [op, arg] of [
      [7, 0],
      [9, 0x0602],
    ] as const)
      expect(statusOf(channel.handle(initPacket(op, arg))!.payload)).toBe(0);
    for (const length of [12, 16, 24, 35]) {
      const short = initPacket(10).payload.slice(0, length);
      const out = channel.handle(packet(short, 3n))!;
      expect(out.payload.length).toBe(Math.max(length, 12));
      expect(statusOf(out.payload)).toBe(NtStatus.InvalidParameter);
    }
    const full = channel.handle(initPacket(10))!;
    expect(statusOf(full.payload)).toBe(0);
    expect(new DataView(full.payload.buffer).getUint32(24, true)).toBeGreaterThan(0); // max_transfer_bytes
    expect(statusOf(channel.handle(initPacket(8))!.payload)).toBe(0);
  });
});
