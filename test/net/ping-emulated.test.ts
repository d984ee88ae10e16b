/**
 * Guest in the loop: two ref-emulated VMs, each with an NE2000, on one private switch reached
 * over its Unix socket (one SwitchLink per NIC, as a VM worker holds it). The guests' own stack
 * answers ARP and ICMP echo; `ping` runs in each direction.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShellRig } from '../guests/shell-rig.ts';
import { SwitchServer } from '../../root-partition/vswitch/switch-server.ts';
import { SwitchLink } from '../../root-partition/vswitch/switch-link.ts';
import { formatMac } from '../../root-partition/vswitch/ethernet.ts';

const MAC1 = Uint8Array.from([0x00, 0x15, 0x5d, 0x10, 0x00, 0x01]);
const MAC2 = Uint8Array.from([0x00, 0x15, 0x5d, 0x10, 0x00, 0x02]);

let dir: string;
let server: SwitchServer;
const rigs: ShellRig[] = [];
const links: SwitchLink[] = [];

async function vmOnSwitch(mac: Uint8Array): Promise<ShellRig> {
  const rig = await ShellRig.boot({ image: 'ref-emulated', nics: [mac] });
  rigs.push(rig);
  const card = rig.platform.chipset.nics[0]!.card;
  const link = await SwitchLink.connect(server.path, { kind: 'emulated', mac: formatMac(mac) });
  links.push(link);
  card.onTransmit = (f) => link.send(f);
  link.onFrame = (f) => card.receive(f);
  await rig.ready();
  return rig;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsvisor-ping-'));
  server = await SwitchServer.listen(join(dir, 'private.sock'), { name: 'private' });
}, 60_000);

afterAll(async () => {
  for (const l of links) l.close();
  for (const r of rigs) await r.dispose();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('two unenlightened VMs on a private switch (NE2000)', () => {
  it('find their NE2000, take addresses, and ping each other both ways', async () => {
    const [a, b] = [await vmOnSwitch(MAC1), await vmOnSwitch(MAC2)];
    expect(a.console()).toContain('network: ne2000 (RTL8029) at 0xc100 irq 11');
    expect(await a.command('ip 10.0.0.1/24')).toContain('mac 00:15:5d:10:00:01, address 10.0.0.1/24');
    expect(await b.command('ip 10.0.0.2/24')).toContain('address 10.0.0.2/24');
    const ab = await a.command('ping 10.0.0.2 3');
    expect(ab).toContain('64 bytes from 10.0.0.2: icmp_seq=3');
    expect(ab).toContain('3 packets transmitted, 3 received');
    const ba = await b.command('ping 10.0.0.1 2');
    expect(ba).toContain('2 packets transmitted, 2 received');
    const counters = await b.command('counters');
    expect(counters).toMatch(/ne2000: sent=\d+ received=\d+ interrupts=[1-9]/);
    // The switch learned both MACs on their ports and dropped nothing on the way.
    expect(server.switch.table.size).toBe(2);
    for (const p of server.switch.allPorts()) expect(p.counters.drops.full + p.counters.drops.spoofed).toBe(0);
  }, 60_000);

  it('a ping to an address nobody has ends with no ARP reply, and the shell goes on', async () => {
    const a = rigs[0]!;
    const out = await a.command('ping 10.0.0.9 1');
    expect(out).toContain('ping: no ARP reply from 10.0.0.9');
    expect(await a.command('echo still here')).toContain('still here');
  }, 60_000);
});
