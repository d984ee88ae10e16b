import { describe, expect, it } from 'vitest';
import { VirtualSwitch, SwitchType } from '../../root-partition/vswitch/virtual-switch.ts';
import { PacketFilter, SwitchPortKind, type SwitchPortOptions } from '../../root-partition/vswitch/switch-port.ts';
import { MacTable } from '../../root-partition/vswitch/mac-table.ts';
import { parseMac } from '../../root-partition/vswitch/ethernet.ts';

const A = '00:15:5d:00:00:0a';
const B = '00:15:5d:00:00:0b';
const C = '00:15:5d:00:00:0c';
const BCAST = 'ff:ff:ff:ff:ff:ff';

function frame(dst: string, src: string, payload = 46, etherType = 0x0800): Uint8Array {
  const f = new Uint8Array(14 + payload);
  f.set(parseMac(dst), 0);
  f.set(parseMac(src), 6);
  f[12] = etherType >> 8;
  f[13] = etherType & 0xff;
  for (let i = 14; i < f.length; i++) f[i] = i & 0xff;
  return f;
}

function rig(opts: { type?: SwitchType } = {}) {
  let now = 0;
  const sw = new VirtualSwitch({ name: 'sw', type: opts.type, now: () => now });
  const got = new Map<string, Uint8Array[]>();
  const add = (name: string, o: Partial<SwitchPortOptions> & { mac?: string }, accept = () => true) => {
    got.set(name, []);
    return sw.addPort({ kind: SwitchPortKind.Synthetic, name, ...o }, (f) => {
      if (!accept()) return false;
      got.get(name)!.push(f.slice());
      return true;
    });
  };
  return { sw, got, add, tick: (ms: number) => (now += ms) };
}

describe('virtual switch: learning and forwarding', () => {
  it('floods an unknown unicast, learns the source, then forwards the reply to one port only', () => {
    const { sw, got, add } = rig();
    const a = add('a', { mac: A });
    const b = add('b', { mac: B });
    add('c', { mac: C, kind: SwitchPortKind.Emulated });
    // B is unknown: flooded to b and c; c's filter (directed to its MAC only) drops it.
    expect(sw.ingress(a.id, frame(B, A))).toBe(1);
    expect(got.get('b')).toHaveLength(1);
    expect(got.get('c')).toHaveLength(0);
    expect(sw.port(3)!.counters.drops.filtered).toBe(1);
    expect(a.counters.flooded).toBe(1);
    // B answers A: A was learned on port a, so only a gets it and nothing is flooded.
    expect(sw.ingress(b.id, frame(A, B))).toBe(1);
    expect(got.get('a')![0]).toEqual(frame(A, B));
    expect(b.counters.flooded).toBe(0);
    expect(
      sw.table
        .snapshot()
        .map((e) => [e.mac, e.port])
        .sort(),
    ).toEqual([
      [A, a.id],
      [B, b.id],
    ]);
  });

  it('floods broadcast and multicast to every other port within the receive filters, never back to the sender', () => {
    const { sw, got, add } = rig();
    const a = add('a', { mac: A });
    const b = add('b', { mac: B });
    const c = add('c', { mac: C });
    c.filter = { bits: PacketFilter.Directed }; // no broadcast bit
    expect(sw.ingress(a.id, frame(BCAST, A))).toBe(1);
    expect(got.get('a')).toHaveLength(0);
    expect(got.get('b')).toHaveLength(1);
    expect(c.counters.drops.filtered).toBe(1);
    b.filter = { bits: PacketFilter.Directed | PacketFilter.Multicast, multicast: (f) => f[5] === 0xfb };
    c.filter = { bits: PacketFilter.Promiscuous };
    expect(sw.ingress(a.id, frame('01:00:5e:00:00:fb', A))).toBe(2);
    expect(sw.ingress(a.id, frame('01:00:5e:00:00:fc', A))).toBe(1); // only the promiscuous port
    expect(a.counters).toMatchObject({ ingressFrames: 3, ingressBroadcast: 1, ingressMulticast: 2, ingressUnicast: 0, flooded: 3 });
    expect(b.counters.egressFrames).toBe(2);
    expect(c.counters.egressFrames).toBe(2);
    expect(c.counters.egressBytes).toBe(120);
  });

  it('never learns a group source address', () => {
    const { sw, add } = rig();
    const a = add('a', { mac: A, allowMacSpoofing: true });
    add('b', { mac: B });
    sw.ingress(a.id, frame(B, '01:00:5e:00:00:01'));
    expect(sw.table.size).toBe(0);
  });

  it('follows a MAC that moves to another port', () => {
    const { sw, got, add } = rig();
    const a = add('a', { mac: A, allowMacSpoofing: true });
    const b = add('b', { mac: B, allowMacSpoofing: true });
    const c = add('c', { mac: C });
    sw.ingress(a.id, frame(C, '00:15:5d:99:99:99'));
    sw.ingress(b.id, frame(C, '00:15:5d:99:99:99'));
    a.filter = b.filter = { bits: PacketFilter.Promiscuous };
    got.get('a')!.length = 0;
    got.get('b')!.length = 0;
    expect(sw.ingress(c.id, frame('00:15:5d:99:99:99', C))).toBe(1);
    expect(got.get('a')).toHaveLength(0);
    expect(got.get('b')).toHaveLength(1);
  });

  it('ages entries out after the aging time, so the destination is flooded again', () => {
    const { sw, add, tick } = rig();
    const a = add('a', { mac: A });
    const b = add('b', { mac: B });
    sw.ingress(b.id, frame(A, B));
    tick(299_999);
    sw.ingress(a.id, frame(B, A));
    expect(a.counters.flooded).toBe(0);
    tick(1);
    sw.ingress(a.id, frame(B, A));
    expect(a.counters.flooded).toBe(1);
    // The lookup that found B aged already removed it; A (relearned at 300 000) ages out now.
    tick(300_000);
    expect(sw.table.size).toBe(1);
    expect(sw.age()).toBe(1);
    expect(sw.table.size).toBe(0);
  });

  it('removing a port forgets its addresses and stops delivery to it', () => {
    const { sw, got, add } = rig();
    const a = add('a', { mac: A });
    const b = add('b', { mac: B });
    sw.ingress(b.id, frame(A, B));
    sw.removePort(b.id);
    expect(sw.table.snapshot().map((e) => e.mac)).toEqual([]);
    expect(sw.ingress(a.id, frame(B, A))).toBe(0);
    expect(got.get('b')).toHaveLength(0);
  });
});

describe('virtual switch: ingress checks, VLANs and MTU', () => {
  it('drops runts, spoofed sources and (on access ports) tagged frames, each counted by reason', () => {
    const { sw, got, add } = rig();
    const a = add('a', { mac: A });
    const v = add('v', { mac: C, vlanId: 10 });
    add('b', { mac: B });
    expect(sw.ingress(a.id, new Uint8Array(13))).toBe(0);
    expect(sw.ingress(a.id, frame(B, C))).toBe(0);
    const tagged = frame(B, C, 50, 0x8100);
    tagged[14] = 0x00;
    tagged[15] = 20; // VLAN 20
    expect(sw.ingress(v.id, tagged)).toBe(0);
    expect(a.counters.drops).toMatchObject({ runt: 1, spoofed: 1 });
    expect(v.counters.drops.vlan).toBe(1);
    expect(a.counters.ingressFrames).toBe(0);
    expect(got.get('b')).toHaveLength(0);
  });

  it('forwards only within a VLAN, for flooded and for learned destinations', () => {
    const { sw, got, add } = rig();
    const a = add('a', { mac: A, vlanId: 10 });
    const _b = add('b', { mac: B, vlanId: 10 });
    const c = add('c', { mac: C, vlanId: 20 });
    const u = add('u', { mac: '00:15:5d:00:00:0d' });
    c.filter = u.filter = { bits: PacketFilter.Promiscuous };
    expect(sw.ingress(a.id, frame(BCAST, A))).toBe(1);
    expect(got.get('b')).toHaveLength(1);
    expect(got.get('c')).toHaveLength(0);
    expect(got.get('u')).toHaveLength(0);
    // c learned in VLAN 20; a frame from VLAN 10 to c's MAC must not cross.
    sw.ingress(c.id, frame(BCAST, C));
    expect(sw.ingress(a.id, frame(C, A))).toBe(0);
    expect(c.counters.drops.vlan).toBe(1);
    expect(got.get('c')).toHaveLength(0);
  });

  it('allows 1500-byte payloads everywhere and 9000 only between jumbo synthetic ports', () => {
    const { sw, got, add } = rig();
    const a = add('a', { mac: A, mtu: 9000 });
    const b = add('b', { mac: B, mtu: 9000 });
    const e = add('e', { mac: C, kind: SwitchPortKind.Emulated });
    e.filter = { bits: PacketFilter.Promiscuous };
    expect(sw.ingress(a.id, frame(B, A, 1500))).toBe(2);
    expect(sw.ingress(a.id, frame(B, A, 9000))).toBe(1); // B still unknown: flooded; e refuses it (MTU)
    expect(e.counters.drops.mtu).toBe(1);
    expect(sw.ingress(a.id, frame(B, A, 9001))).toBe(0);
    expect(a.counters.drops.mtu).toBe(1);
    expect(sw.ingress(e.id, frame(A, C, 1501))).toBe(0);
    expect(e.counters.drops.mtu).toBe(2);
    expect(got.get('b')!.map((f) => f.length)).toEqual([1514, 9014]);
    expect(() => sw.addPort({ kind: SwitchPortKind.Emulated, mac: '00:15:5d:00:00:ee', mtu: 9000 }, () => true)).toThrow(/MTU/);
    expect(b.mtu).toBe(9000);
  });

  it('counts a full receive ring as a drop of that port only', () => {
    const { sw, got, add } = rig();
    const a = add('a', { mac: A });
    const b = add('b', { mac: B }, () => false);
    const c = add('c', { mac: C });
    expect(sw.ingress(a.id, frame(BCAST, A))).toBe(1);
    expect(b.counters.drops.full).toBe(1);
    expect(got.get('c')).toHaveLength(1);
    expect(c.counters.drops.full).toBe(0);
  });

  it('a port that is down neither sends nor receives', () => {
    const { sw, add } = rig();
    const a = add('a', { mac: A });
    const b = add('b', { mac: B });
    b.up = false;
    expect(sw.ingress(a.id, frame(BCAST, A))).toBe(0);
    expect(sw.ingress(b.id, frame(BCAST, B))).toBe(0);
    expect(b.counters.drops.down).toBe(2);
  });
});

describe('virtual switch: kinds and bounds', () => {
  it('a private switch takes VM ports only; internal takes one internal port; only external has an uplink', () => {
    const priv = new VirtualSwitch({ name: 'p' });
    expect(() => priv.addPort({ kind: SwitchPortKind.Internal }, () => true)).toThrow(/private/);
    const internal = new VirtualSwitch({ name: 'i', type: SwitchType.Internal });
    internal.addPort({ kind: SwitchPortKind.Internal }, () => true);
    expect(() => internal.addPort({ kind: SwitchPortKind.Internal }, () => true)).toThrow(/already has/);
    expect(() => internal.addPort({ kind: SwitchPortKind.External }, () => true)).toThrow(/uplink/);
    const ext = new VirtualSwitch({ name: 'e', type: SwitchType.External });
    ext.addPort({ kind: SwitchPortKind.External }, () => true);
    expect(() => priv.addPort({ kind: SwitchPortKind.Synthetic }, () => true)).toThrow(/MAC/);
    expect(() => priv.addPort({ kind: SwitchPortKind.Synthetic, mac: A, vlanId: 4095 }, () => true)).toThrow(/VLAN/);
  });

  it('bounds the MAC table under a flood of forged source addresses, evicting the oldest', () => {
    let now = 0;
    const sw = new VirtualSwitch({ name: 'sw', macTableLimit: 64, now: () => now++ });
    const a = sw.addPort({ kind: SwitchPortKind.Synthetic, mac: A, allowMacSpoofing: true }, () => true);
    const b = sw.addPort({ kind: SwitchPortKind.Synthetic, mac: B }, () => true);
    sw.ingress(b.id, frame(BCAST, B));
    const f = frame(BCAST, A);
    f[8] = 0x77; // forged sources 00:15:5d:77:xx:xx never collide with B
    for (let i = 0; i < 100_000; i++) {
      f[9] = (i >> 16) & 0xff;
      f[10] = (i >> 8) & 0xff;
      f[11] = i & 0xff;
      sw.ingress(a.id, f);
    }
    expect(sw.table.size).toBe(64);
    expect(sw.table.evictions).toBe(100_001 - 64);
    expect(sw.table.lookup(B, now)).toBeUndefined(); // the oldest went first
  });

  it('refuses more ports than its limit', () => {
    const sw = new VirtualSwitch({ name: 'sw', maxPorts: 2 });
    sw.addPort({ kind: SwitchPortKind.Synthetic, mac: A }, () => true);
    sw.addPort({ kind: SwitchPortKind.Synthetic, mac: B }, () => true);
    expect(() => sw.addPort({ kind: SwitchPortKind.Synthetic, mac: C }, () => true)).toThrow(/2 ports/);
  });

  it('MacTable validates its parameters', () => {
    expect(() => new MacTable(0)).toThrow(RangeError);
    expect(() => new MacTable(1000, 0)).toThrow(RangeError);
  });
});
