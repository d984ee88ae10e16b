/**
 * `tsvisor run linux --nic`: a synthetic NIC on an external switch of the command's own, with
 * passt as its uplink — the user-mode networking a VMMS external switch has (passt-uplink.ts),
 * without VMMS. The switch listens on a Unix socket in a private temporary directory; passt
 * answers ARP and DHCP for the guest's address, NATs its flows onto the host's sockets and maps
 * the gateway address to the host's loopback. Everything ends with the command.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NicConfig } from '../vmwp/device-config.ts';
import { PasstUplink } from '../vswitch/passt-uplink.ts';
import { SwitchServer } from '../vswitch/switch-server.ts';
import { SwitchType } from '../vswitch/virtual-switch.ts';

/** The addresses passt uses on the run's network, as on a VMMS external switch's default. */
export const RUN_NETWORK = { guestAddress: '10.0.2.15', prefixLength: 24, gateway: '10.0.2.2' } as const;
/** The guest's MAC: Hyper-V's OUI 00:15:5D, as VMMS hands out. */
export const RUN_NIC_MAC = '00:15:5d:00:00:01';

export interface RunNetwork {
  nic: NicConfig;
  close(): Promise<void>;
}

export async function startRunNetwork(log: (message: string) => void): Promise<RunNetwork> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvisor-run-net-'));
  let server: SwitchServer | undefined;
  try {
    server = await SwitchServer.listen(join(dir, 'switch.sock'), { name: 'run-linux', type: SwitchType.External });
    const passt = new PasstUplink(server.switch, { socketPath: join(dir, 'passt.sock'), ...RUN_NETWORK, forwards: [], reach: 'networks', log });
    passt.start();
    const s = server;
    return {
      nic: { kind: 'synthetic', mac: RUN_NIC_MAC, instanceId: randomUUID(), name: 'linux/nic', switchSocket: s.path },
      close: async () => {
        await passt.stop();
        await s.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
