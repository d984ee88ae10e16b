/**
 * Switches and network adapters with the `tsvisor` binary against a real `tsvisor serve`, through
 * the management API (the switch service's DefineSystem / DestroySystem; AddResourceSettings of
 * Msvm_Synthetic/EmulatedEthernetPortSettingData and then Msvm_EthernetPortAllocationSettingData,
 * as Add-VMNetworkAdapter does): what the definitions hold afterwards, and the errors in words.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { LiveDaemon, run, TSVISOR, WBEMCLI } from '../management/live-daemon.ts';
import { waitFor } from '../vmms/vmms-fixture.ts';

let daemon: LiveDaemon;
const tsvisor = (group: string, ...args: string[]) => run(process.execPath, [TSVISOR, group, '--data-dir', daemon.dataDir, ...args], 60_000);
const json = async (group: string, ...args: string[]) => {
  const r = await tsvisor(group, ...args, '--json');
  if (r.code !== 0) throw new Error(`${group} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout);
};

beforeAll(async () => {
  await buildGuests(['ref-enlightened']);
  daemon = await LiveDaemon.start();
}, 180_000);

afterAll(async () => {
  if (daemon) expect(await daemon.stop()).toEqual([]);
}, 60_000);

describe('switches and network adapters through the CLI', () => {
  it('New-/Get-/Remove-VMSwitch and Add-/Get-/Remove-VMNetworkAdapter', async () => {
    const made = await tsvisor('switch', 'new', 'lab');
    expect([made.code, made.stdout]).toEqual([0, expect.stringMatching(/^switch lab created \(private, [0-9a-f-]{36}\)\n$/)]);
    expect(await json('switch', 'new', 'hostnet', '--type', 'internal')).toMatchObject({ name: 'hostnet', type: 'internal' });
    expect((await tsvisor('switch', 'new', 'out', '--type', 'bridged')).stderr).toBe('tsvisor: --type must be private, internal or external, not "bridged"\n');
    // An external switch: passt is its uplink (through WMI: a port on an Msvm_ExternalEthernetPort), with QEMU's defaults.
    const external = await json('switch', 'new', 'out', '--external');
    expect(external).toMatchObject({ name: 'out', type: 'external', passt: true });
    expect(JSON.parse(readFileSync(join(daemon.dataDir, 'switches', `${external.id}.json`), 'utf8'))).toMatchObject({
      type: 'external',
      passt: { guestAddress: '10.0.2.15/24', gateway: '10.0.2.2', forwards: [] },
    });
    const switches = await json('switch', 'list');
    expect(switches.map((s: { name: string; type: string; connectedPorts: number }) => [s.name, s.type]).sort()).toEqual([
      ['hostnet', 'internal'],
      ['lab', 'private'],
      ['out', 'external'],
    ]);
    // Persisted by VMMS: one definition file per switch.
    expect(readdirSync(join(daemon.dataDir, 'switches')).filter((f) => f.endsWith('.json')).length).toBe(3);
    expect((await tsvisor('switch', 'rm', 'out')).code).toBe(0);

    // passt as the host's side of an internal switch, with a port forward; refused on a private one or with a bad forward.
    expect((await tsvisor('switch', 'new', 'nat', '--forward', 'udp:1:7')).stderr).toContain('add --internal');
    expect((await tsvisor('switch', 'new', 'nat', '--internal', '--forward', 'udp:70000:7')).stderr).toContain('"udp:70000:7": ports are 1..65535');
    const nat = await json(
      'switch',
      'new',
      'nat',
      '--internal',
      '--forward',
      'udp:40123:7',
      '--guest-address',
      '192.168.77.10/24',
      '--gateway',
      '192.168.77.1',
    );
    expect(nat).toMatchObject({ name: 'nat', type: 'internal', passt: true });
    const natDef = JSON.parse(readFileSync(join(daemon.dataDir, 'switches', `${nat.id}.json`), 'utf8'));
    expect(natDef.passt).toEqual({ guestAddress: '192.168.77.10/24', gateway: '192.168.77.1', forwards: ['udp:40123:7'] });
    const passtPids = () =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`passt-${nat.id}.sock`);
          } catch {
            return false;
          }
        });
    await waitFor('passt running for the switch', () => passtPids().length === 1);
    expect((await tsvisor('switch', 'rm', 'nat')).code).toBe(0);
    await waitFor('passt gone with the switch', () => passtPids().length === 0);

    expect((await tsvisor('vm', 'new', 'fw', '--image', guestImagePath('ref-enlightened'), '-m', '32M')).code).toBe(0);
    const syn = await json('vm', 'nic', 'add', 'fw', '--switch', 'lab', '--name', 'inside', '--max-channels', '2');
    expect(syn.adapter).toMatchObject({ name: 'inside', legacy: false, switch: 'lab', staticMac: false, vlanId: null, maxChannels: 2 });
    expect(syn.adapter.mac).toMatch(/^00:15:5d:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
    const legacy = await tsvisor('vm', 'nic', 'add', 'fw', '--legacy', '--switch', 'hostnet', '--mac', '00-15-5D-AA-BB-CC', '--vlan', '7');
    expect([legacy.code, legacy.stdout]).toEqual([0, 'fw: legacy adapter "Legacy Network Adapter" added, mac 00:15:5d:aa:bb:cc, on switch hostnet\n']);
    const listed = await json('vm', 'nic', 'list', 'fw');
    expect(listed).toEqual([
      { name: 'inside', legacy: false, mac: syn.adapter.mac, staticMac: false, switch: 'lab', vlanId: null, maxChannels: 2 },
      { name: 'Legacy Network Adapter', legacy: true, mac: '00:15:5d:aa:bb:cc', staticMac: true, switch: 'hostnet', vlanId: 7, maxChannels: null },
    ]);
    // The definition holds what the worker builds from.
    const definition = () =>
      JSON.parse(readFileSync(join(daemon.dataDir, 'vms', readdirSync(join(daemon.dataDir, 'vms')).find((f) => f.endsWith('.json'))!), 'utf8'));
    expect(definition().devices.filter((d: { kind: string }) => d.kind === 'network-adapter')).toEqual([
      { kind: 'network-adapter', instanceId: expect.stringMatching(/^[0-9a-f-]{36}$/), name: 'inside', switch: 'lab', maxChannels: 2 },
      { kind: 'network-adapter', instanceId: expect.stringMatching(/^[0-9a-f-]{36}$/), legacy: true, mac: '00:15:5d:aa:bb:cc', switch: 'hostnet', vlanId: 7 },
    ]);

    // Set-VMNetworkAdapter: MaxChannels through ModifyResourceSettings, seen by an unmodified WBEM client.
    expect((await json('vm', 'nic', 'set', 'fw', 'inside', '--max-channels', '4')).adapter).toMatchObject({ name: 'inside', maxChannels: 4 });
    expect(definition().devices.find((d: { name?: string }) => d.name === 'inside').maxChannels).toBe(4);
    if (WBEMCLI) {
      const ei = await run(WBEMCLI, ['-nl', 'ei', `${daemon.url()}:Msvm_SyntheticEthernetPortSettingData`]);
      expect(ei.stdout).toMatch(/-MaxChannels=4\n/);
    }
    expect((await tsvisor('vm', 'nic', 'set', 'fw', 'inside', '--max-channels', '65')).stderr).toBe(
      'tsvisor: --max-channels must be 1 to 64 or default, not "65"\n',
    );
    expect((await tsvisor('vm', 'nic', 'set', 'fw', '00:15:5d:aa:bb:cc', '--max-channels', '2')).stderr).toContain('is a legacy one');
    expect((await tsvisor('vm', 'nic', 'add', 'fw', '--legacy', '--max-channels', '2')).stderr).toContain('--max-channels is for synthetic adapters');
    expect((await json('vm', 'nic', 'set', 'fw', 'inside', '--max-channels', 'default')).adapter.maxChannels).toBeNull();
    expect(definition().devices.find((d: { name?: string }) => d.name === 'inside')).not.toHaveProperty('maxChannels');

    expect((await tsvisor('vm', 'nic', 'rm', 'fw', '00:15:5d:aa:bb:cc')).stdout).toBe('fw: adapter "Legacy Network Adapter" (00:15:5d:aa:bb:cc) removed\n');
    expect((await tsvisor('switch', 'rm', 'hostnet')).stdout).toBe('switch hostnet removed\n');
    expect(readdirSync(join(daemon.dataDir, 'switches')).filter((f) => f.endsWith('.json')).length).toBe(1);
  }, 300_000);
});
