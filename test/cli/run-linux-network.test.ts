/**
 * `tsvisor run linux --nic`'s own network (run-linux-network.ts) without booting Linux: the
 * switch listens on its socket with passt connected as its uplink, a NIC port can join it, and
 * closing ends passt and removes the private directory. The refusals of the command's options.
 * The Linux boot test (test/linux/linux-guest.test.ts) reaches a host server through it.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLinuxGuest } from '../../root-partition/cli/run-linux-command.ts';
import { RUN_NIC_MAC, startRunNetwork } from '../../root-partition/cli/run-linux-network.ts';
import { SwitchLink } from '../../root-partition/vswitch/switch-link.ts';
import { waitFor } from '../vmms/vmms-fixture.ts';

describe('run linux --nic: the command network', () => {
  it('serves a switch with passt as its uplink, takes the NIC as a port, and ends both on close', async () => {
    const logs: string[] = [];
    const net = await startRunNetwork((m) => logs.push(m));
    const socket = net.nic.switchSocket!;
    expect(net.nic).toMatchObject({ kind: 'synthetic', mac: RUN_NIC_MAC });
    expect(existsSync(socket)).toBe(true);
    const passt = Number(await waitFor('passt', () => /passt (\d+) serves switch run-linux/.exec(logs.join('\n'))?.[1], 10_000));
    expect(logs.join('\n')).toContain('(guest 10.0.2.15/24, gateway 10.0.2.2)');
    const link = await SwitchLink.connect(socket, { kind: 'synthetic', mac: RUN_NIC_MAC, mtu: 1500 });
    link.close();
    await net.close();
    expect(existsSync(dirname(socket))).toBe(false);
    expect(() => process.kill(passt, 0)).toThrow();
  }, 20_000);

  it('is refused without the enlightenments (no VMBus for hv_netvsc)', async () => {
    await expect(runLinuxGuest({ memoryBytes: 128 << 20, cmdline: '', nic: true, noEnlightenments: true })).rejects.toThrow(
      /a synthetic NIC needs the Hyper-V enlightenments/,
    );
  });
});
