/**
 * storvsp (root-partition/vsp/storvsp): vstor packets and SRBs with GPA-direct ranges, a
 * sequence of `[u8 length][payload][u8 ranges]` then per range `[u16 byte_count][u16 offset]
 * [u8 pfns][u16 pfn…]` (a pfn of 0xffff stands for 2^40: far beyond guest memory). The channel
 * is fresh per input, over 1 MiB of guest memory and a 256-sector disk. Bugs: an exception, a
 * completion longer than a vstor packet, or a channel that no longer serves a normal READ(10).
 */
import { decodeSrbCompletion, SrbStatus } from '../../root-partition/vsp/storvsp/storvsp-protocol.ts';
import { ScsiDisk } from '../../root-partition/storage/scsi/scsi-disk.ts';
import { StorVspChannel } from '../../root-partition/vsp/storvsp/storvsp-channel.ts';
import type { GpaRangeLike as GpaDirectRange } from '../../vmbus/host/gpa-direct.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { MemoryDisk } from '../../test/helpers/memory-disk.ts';
import { diskId, initPacket, packet, rangeAt, srbPacket } from '../../test/vsp/storvsp-test-guest.ts';
import { invariant, type FuzzTarget } from '../engine/target.ts';
import { InputBuilder, InputCursor } from './input-cursor.ts';

function step(b: InputBuilder, payload: Uint8Array, ranges: GpaDirectRange[] = []): void {
  b.u8(payload.length).bytes(payload).u8(ranges.length);
  for (const r of ranges) {
    b.u16(r.byteCount).u16(r.byteOffset).u8(r.pfns.length);
    for (let i = 0; i < r.pfns.length; i++) b.u16(Number(r.pfns[i]));
  }
}

function negotiateSteps(b: InputBuilder): InputBuilder {
  for (const [op, arg] of [
    [7, 0],
    [9, 0x0602],
    [10, 0],
    [8, 0],
  ] as const)
    step(b, initPacket(op, arg).payload);
  return b;
}

export function createTarget(): FuzzTarget {
  const memory = new GuestMemory(1 << 20);
  const disk = new MemoryDisk(256);
  return {
    name: 'storvsp',
    description: 'storvsp vstor packets and SRBs with GPA-direct ranges, a sequence per channel',
    maxInputBytes: 4096,
    dictionary: [
      Uint8Array.of(3, 0, 0, 0),
      Uint8Array.of(0x28),
      Uint8Array.of(0x2a),
      Uint8Array.of(0x12),
      Uint8Array.of(0xa0),
      Uint8Array.of(0x25),
      Uint8Array.of(0x9e, 0x10),
      Uint8Array.of(0x35),
      Uint8Array.of(0x00, 0x10),
    ],
    seeds: () => {
      const read = negotiateSteps(new InputBuilder());
      step(read, srbPacket({ cdb: '28000000000000000100', dataIn: 1, dataTransferLength: 512 }), [rangeAt(0x3000, 512)]);
      step(read, srbPacket({ cdb: '2a000000000100000200', dataIn: 0, dataTransferLength: 1024 }), [rangeAt(0x5f00, 1024)]);
      step(read, srbPacket({ cdb: '120000006000', dataIn: 1, dataTransferLength: 96 }), [rangeAt(0x2000, 96)]);
      step(read, srbPacket({ cdb: '25000000000000000000', dataIn: 1, dataTransferLength: 8 }), [rangeAt(0x2000, 8)]);
      step(read, srbPacket({ cdb: 'a000000000000000100000', dataIn: 1, dataTransferLength: 16 }), [rangeAt(0x2000, 16)]);
      step(read, srbPacket({ cdb: '00', dataIn: 2 }));
      const bare = new InputBuilder();
      step(bare, srbPacket({ cdb: '28000000000000000100', dataIn: 1, dataTransferLength: 512 }), [rangeAt(0x3000, 512)]);
      return [read.build(), bare.build()];
    },
    run(input) {
      memory.u8.fill(0);
      const channel = new StorVspChannel({
        memory,
        luns: [{ pathId: 0, targetId: 0, lun: 0, disk: new ScsiDisk(disk, { diskId: diskId(1) }) }],
        maxSubChannels: 4,
      });
      const c = new InputCursor(input);
      let txn = 1n;
      while (!c.done) {
        const payload = c.take(c.u8());
        const ranges: GpaDirectRange[] = [];
        for (let n = c.u8() % 4; n > 0; n--) {
          const byteCount = c.u16();
          const byteOffset = c.u16();
          const pfns: bigint[] = [];
          for (let k = c.u8() % 20; k > 0; k--) {
            const p = c.u16();
            pfns.push(p === 0xffff ? 1n << 40n : BigInt(p));
          }
          ranges.push({ byteCount, byteOffset, pfns });
        }
        const out = channel.handle(packet(payload, txn++, ranges.length ? ranges : undefined));
        if (out) invariant(out.payload.length <= 64, `a completion of ${out.payload.length} bytes`);
      }
      // Whatever came before, a well-formed READ(10) after (re)negotiation must still work.
      for (const p of [7, 9, 10, 8]) channel.handle(initPacket(p, p === 9 ? 0x0602 : 0));
      disk.bytes.fill(0x5a, 0, 512);
      const out = channel.handle(packet(srbPacket({ cdb: '28000000000000000100', dataIn: 1, dataTransferLength: 512 }), 77n, [rangeAt(0x3000, 512)]));
      invariant(out !== null && decodeSrbCompletion(out.payload).srbStatus === SrbStatus.Success, 'the channel no longer serves READ(10)');
      invariant(memory.u8[0x31ff] === 0x5a, 'READ(10) did not place the data');
    },
    isExpectedError: () => false,
  };
}
