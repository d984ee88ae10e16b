/**
 * StorVsp's part of a VMBus saved state: each open channel's vstor initialization step and
 * protocol version. A primary restored ready, and its sub-channel restored after it, serve I/O on
 * the primary's controller; a sub-channel whose primary the guest had closed gets a controller of
 * its own; a state that does not fit this controller is refused before anything is applied.
 */
import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import type { VspChannel } from '../../vmbus/host/vsp-channel.ts';
import { StorVsp } from '../../root-partition/vsp/storvsp/storvsp-vsp.ts';
import { VmstorProtocolVersion } from '../../root-partition/vsp/storvsp/storvsp-protocol.ts';
import { encodeStorVspChannel } from '../../root-partition/vsp/storvsp/storvsp-saved-state.ts';

const ID = '7c3d3a2e-5b1f-4c11-9d0e-0a0b0c0d0e09';
const mem = new GuestMemory(1 << 20);
const channel = (relid: number, subChannelIndex = 0, primaryRelid = relid) =>
  ({ relid, subChannelIndex, primaryRelid, mem, isDraining: false, context: undefined }) as unknown as VspChannel;
const vsp = () => new StorVsp({ instanceId: ID, luns: [], maxSubChannels: 2, subChannels: { offerSubchannel: () => 0 } });

describe('storvsp saved state', () => {
  it('saves and restores each step of the initialization with its version', () => {
    const steps = [
      { kind: 'begin' },
      { kind: 'query-version' },
      { kind: 'query-properties', version: VmstorProtocolVersion.Win8 },
      { kind: 'end', version: VmstorProtocolVersion.Win10 },
      { kind: 'ready', version: VmstorProtocolVersion.Win10 },
    ] as const;
    for (const init of steps) {
      const a = vsp();
      const ch = channel(3);
      a.restoreChannel(ch, encodeStorVspChannel({ init, subChannel: false }))();
      expect(a.channelProtocol(ch)!.initState).toEqual(init);
      expect(Buffer.from(a.saveChannel(ch))).toEqual(Buffer.from(encodeStorVspChannel({ init, subChannel: false })));
    }
  });

  it('a sub-channel restored after its primary shares its controller; without the primary it gets its own, ready', () => {
    const a = vsp();
    const primary = channel(3);
    const sub = channel(7, 1, 3);
    const ready = { kind: 'ready', version: VmstorProtocolVersion.Win10 } as const;
    a.restoreChannel(primary, encodeStorVspChannel({ init: ready, subChannel: false }))();
    a.restoreChannel(sub, encodeStorVspChannel({ init: ready, subChannel: true }))();
    expect(a.channelProtocol(sub)!.isReady).toBe(true);
    expect(a.channelProtocol(sub)!.protocolVersion).toBe(VmstorProtocolVersion.Win10);
    const orphan = channel(8, 2, 5);
    a.restoreChannel(orphan, encodeStorVspChannel({ init: ready, subChannel: true }))();
    expect(a.channelProtocol(orphan)!.isReady).toBe(true);
  });

  it('refuses a version this controller does not accept, a sub-channel mismatch, a sub-channel not ready, and no state', () => {
    const a = new StorVsp({ instanceId: ID, luns: [], versions: [VmstorProtocolVersion.Win8] });
    const ch = channel(3);
    expect(() => a.restoreChannel(ch, encodeStorVspChannel({ init: { kind: 'ready', version: VmstorProtocolVersion.Win10 }, subChannel: false }))).toThrow(
      /protocol version 0x602 is not one this controller accepts/,
    );
    expect(() => a.restoreChannel(ch, encodeStorVspChannel({ init: { kind: 'ready', version: VmstorProtocolVersion.Win8 }, subChannel: true }))).toThrow(
      /relid 3 sub-channel mismatch/,
    );
    expect(() =>
      a.restoreChannel(channel(4, 1, 3), encodeStorVspChannel({ init: { kind: 'end', version: VmstorProtocolVersion.Win8 }, subChannel: true })),
    ).toThrow(/a sub-channel in state end/);
    expect(() => a.restoreChannel(ch, undefined)).toThrow(/none for open relid 3/);
    expect(() => a.restoreChannel(ch, new Uint8Array([0x08, 0x02]))).toThrow(/format 2 is not supported/);
    expect(() => a.restoreChannel(ch, new Uint8Array([0x08, 0x01, 0x10, 0x07]))).toThrow(/initialization state 7/);
    expect(ch.context).toBeUndefined(); // nothing applied
  });
});
