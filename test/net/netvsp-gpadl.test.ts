/**
 * Which GPADLs a synthetic NIC takes as its receive and send buffers: only complete ones the guest
 * created on the NIC's own channel, never ones holding a channel's rings — checked on
 * GPADL records as the VMBus server keeps them (gpadl-table.ts).
 */
import { describe, expect, it } from 'vitest';
import { channelGpadlPages } from '../../root-partition/vsp/netvsp/netvsp-vsp.ts';
import type { Gpadl } from '../../vmbus/server/gpadl-table.ts';

function table(...gpadls: Partial<Gpadl>[]) {
  const byHandle = new Map(gpadls.map((g) => [g.handle!, { relid: 1, pages: [0x100, 0x101], complete: true, usedByRelid: 0, ...g }]));
  return { gpadl: (h: number) => byHandle.get(h) };
}

describe('netvsp buffer GPADLs', () => {
  it('takes a complete GPADL created on its own channel', () => {
    expect(channelGpadlPages(table({ handle: 7 }), 7, 1)).toEqual([0x100, 0x101]);
  });

  it("refuses an unknown handle, another channel's GPADL, a half-described one and a ring GPADL", () => {
    const t = table({ handle: 7, relid: 2 }, { handle: 8, complete: false }, { handle: 9, usedByRelid: 1 });
    expect(channelGpadlPages(t, 6, 1)).toBeUndefined();
    expect(channelGpadlPages(t, 7, 1)).toBeUndefined();
    expect(channelGpadlPages(t, 8, 1)).toBeUndefined();
    expect(channelGpadlPages(t, 9, 1)).toBeUndefined();
  });
});
