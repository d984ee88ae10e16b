/**
 * Guest in the loop: two ref-enlightened VMs, each with a synthetic NIC (netvsp on its VMBus, the
 * SDK's netvsc in the guest), on one private switch reached over its Unix socket as a VM worker
 * does. The same pair serves every check: ping both ways, the UDP echo service answering a host
 * peer on the switch, jumbo frames both ways, and a flood the guest's receive buffer bounds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShellRig } from '../guests/shell-rig.ts';
import { SwitchServer } from '../../root-partition/vswitch/switch-server.ts';
import { SwitchLink } from '../../root-partition/vswitch/switch-link.ts';
import { formatMac } from '../../root-partition/vswitch/ethernet.ts';
import { NicSwitchPort } from '../../root-partition/vmwp/nic-switch-port.ts';
import { udpFrame, udpPayload } from './udp-frame.ts';

const MAC1 = Uint8Array.from([0x00, 0x15, 0x5d, 0x20, 0x00, 0x01]);
const MAC2 = Uint8Array.from([0x00, 0x15, 0x5d, 0x20, 0x00, 0x02]);
const HOST_MAC = Uint8Array.from([0x00, 0x15, 0x5d, 0x20, 0x00, 0x99]);
const JUMBO_HOST_MAC = Uint8Array.from([0x00, 0x15, 0x5d, 0x20, 0x00, 0x98]);

let dir: string;
let server: SwitchServer;
const rigs: ShellRig[] = [];
const ports: NicSwitchPort[] = [];
const links: SwitchLink[] = [];

async function vmOnSwitch(mac: Uint8Array): Promise<ShellRig> {
  const rig = await ShellRig.boot({ image: 'ref-enlightened', syntheticNics: [mac], jumbo: true });
  rigs.push(rig);
  const link = await SwitchLink.connect(server.path, { kind: 'synthetic', mac: formatMac(mac), mtu: 9000 });
  const port = new NicSwitchPort({ kind: 'synthetic', vsp: rig.netVsps[0]! }, link);
  ports.push(port);
  rig.onSyntheticTransmit = (_, f) => port.transmit(f);
  await rig.ready();
  return rig;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsvisor-netvsc-'));
  server = await SwitchServer.listen(join(dir, 'private.sock'), { name: 'private' });
}, 60_000);

afterAll(async () => {
  for (const p of ports) p.close();
  for (const l of links) l.close();
  for (const r of rigs) await r.dispose();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('two enlightened VMs on a private switch (netvsc)', () => {
  it('bind netvsc, take addresses and ping each other both ways', async () => {
    const [a, b] = [await vmOnSwitch(MAC1), await vmOnSwitch(MAC2)];
    expect(a.console()).toMatch(/network: netvsc \(VMBus relid \d+, NVSP 6\.1, link up\)/);
    expect(await a.command('ip 10.0.1.1/24')).toContain('mac 00:15:5d:20:00:01, address 10.0.1.1/24');
    expect(await b.command('ip 10.0.1.2/24')).toContain('address 10.0.1.2/24');
    const ab = await a.command('ping 10.0.1.2 3');
    expect(ab).toContain('64 bytes from 10.0.1.2: icmp_seq=3');
    expect(ab).toContain('3 packets transmitted, 3 received');
    expect(await b.command('ping 10.0.1.1 2')).toContain('2 packets transmitted, 2 received');
    expect(await a.command('devices')).toContain('network (netvsc)');
    const counters = await b.command('counters');
    expect(counters).toMatch(/netvsc: sent=[1-9]\d* received=[1-9]\d* rx_packets=\d+ rx_dropped=0 send_busy=0 host_errors=0/);
    // The host side saw the RNDIS handshake and the filter, refused nothing, and every frame went both ways.
    const s = a.netVsps[0]!.stats;
    expect(s.refused + s.transmitErrors + s.controlDropped + s.badCompletions).toBe(0);
    expect(s.framesTransmitted).toBeGreaterThanOrEqual(4);
    expect(s.framesDelivered).toBeGreaterThanOrEqual(4);
    expect(server.switch.table.size).toBe(2);
  }, 60_000);

  it('the UDP echo service answers a host peer on the switch, bytes intact', async () => {
    const host = await SwitchLink.connect(server.path, { kind: 'emulated', mac: formatMac(HOST_MAC) });
    links.push(host);
    const got: Uint8Array[] = [];
    host.onFrame = (f) => {
      const p = udpPayload(f, 40000);
      if (p) got.push(p);
    };
    const data = new TextEncoder().encode('tsvisor netvsc udp echo');
    host.send(udpFrame({ dstMac: MAC2, srcMac: HOST_MAC, srcIp: '10.0.1.99', dstIp: '10.0.1.2', srcPort: 40000, dstPort: 7, data }));
    await rigs[1]!.waitUntil(() => got.length > 0, 'the UDP echo');
    expect(Buffer.from(got[0]!).toString()).toBe('tsvisor netvsc udp echo');
  }, 30_000);

  it('jumbo frames: the guests agree MTU 9000; 9014-byte frames go both ways (GPA-direct sends, 9306-byte receive slots)', async () => {
    const [a, b] = rigs as [ShellRig, ShellRig];
    expect(await a.command('ip')).toContain(', mtu 9000');
    expect(b.netVsps[0]!.net!.maxFrameBytes).toBe(9014);
    expect(b.netVsps[0]!.net!.receiveGeometry!.subAllocSize).toBe(256 + 9014 + 36);
    // A host peer on a jumbo port: a 9014-byte frame to B's UDP echo comes back whole, as one 9014-byte frame.
    const host = await SwitchLink.connect(server.path, { kind: 'synthetic', mac: formatMac(JUMBO_HOST_MAC), mtu: 9000 });
    links.push(host);
    const got: Uint8Array[] = [];
    host.onFrame = (f) => {
      const p = udpPayload(f, 40001);
      if (p) got.push(p);
    };
    const data = Uint8Array.from({ length: 9014 - 42 }, (_, i) => (i * 7 + 3) & 0xff);
    const before = b.netVsps[0]!.stats.framesTransmitted;
    host.send(udpFrame({ dstMac: MAC2, srcMac: JUMBO_HOST_MAC, srcIp: '10.0.1.98', dstIp: '10.0.1.2', srcPort: 40001, dstPort: 7, data }));
    await b.waitUntil(() => got.length > 0, 'the jumbo UDP echo');
    expect(Buffer.from(got[0]!).equals(Buffer.from(data))).toBe(true);
    expect(b.netVsps[0]!.stats.framesTransmitted).toBe(before + 1);
    // Guest to guest: blast in 9014-byte frames; the receiver's discard port counts them.
    const discarded = async () => Number(/udp_discarded=(\d+)/.exec(await b.command('counters'))?.[1]);
    const start = await discarded();
    expect(await a.command('blast 10.0.1.2 40 9014')).toMatch(/blast: 40 frames of 9014 bytes sent to 10\.0\.1\.2, fence answered/);
    expect(await discarded()).toBeGreaterThan(start);
    expect(a.netVsps[0]!.stats.transmitErrors + b.netVsps[0]!.stats.rxDropTooBig).toBe(0);
    // Past the agreed MTU the shell refuses.
    expect(await a.command('blast 10.0.1.2 1 9015')).toContain('error: usage');
  }, 60_000);

  it('a flood beyond the receive buffer is dropped and counted on the host, and the pair still pings', async () => {
    const host = links[0]!;
    const vsp = rigs[0]!.netVsps[0]!;
    const before = vsp.stats;
    // Broadcast frames: every one reaches the guest's NIC; far more than its 96 data slots at once.
    const frame = new Uint8Array(60).fill(0xff, 0, 6);
    frame.set(HOST_MAC, 6);
    frame[12] = 0x88;
    frame[13] = 0xb5; // local experimental EtherType: the stack ignores it
    for (let i = 0; i < 3000; i++) host.send(frame);
    await rigs[0]!.waitUntil(
      () =>
        vsp.stats.framesDelivered +
          vsp.stats.rxDropNoBuffer +
          vsp.stats.rxDropRingFull -
          before.framesDelivered -
          before.rxDropNoBuffer -
          before.rxDropRingFull >=
        3000,
      'the flood to arrive',
    );
    const after = vsp.stats;
    expect(after.rxDropNoBuffer + after.rxDropRingFull).toBeGreaterThan(before.rxDropNoBuffer + before.rxDropRingFull);
    expect(await rigs[0]!.command('ping 10.0.1.2 2')).toContain('2 packets transmitted, 2 received');
  }, 60_000);
});
