/**
 * The host's side of an internal switch through passt (a real passt process, as .ci/run installs
 * it): VMMS starts it with the switch, a host process's UDP datagram to a forwarded port reaches
 * a VM's UDP echo service through passt and the switch and comes back intact; a passt killed
 * with SIGKILL is started again and forwards again; removing the switch ends it. The guest takes
 * the address passt hands out (the switch's guestAddress) by DHCP (`ip dhcp`).
 */
import * as dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { switchDefinitionProblems } from '../../root-partition/vmms/switch-definition.ts';
import { MiB, processAlive, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
const PROMPT = 'tsvisor> ';

beforeAll(async () => {
  await buildGuests(['ref-enlightened']);
}, 120_000);
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Sends `data` to the forwarded port until the echo comes back (the first may meet passt or the guest still starting). */
async function echoThroughPasst(port: number, data: Buffer): Promise<Buffer> {
  const s = dgram.createSocket('udp4');
  try {
    const reply = new Promise<Buffer>((r) => s.on('message', (m) => r(m)));
    let done = false;
    void reply.then(() => (done = true));
    for (let i = 0; i < 50 && !done; i++) {
      s.send(data, port, '127.0.0.1');
      await Promise.race([reply, new Promise((r) => setTimeout(r, 200))]);
    }
    if (!done) throw new Error(`no UDP echo through passt on port ${port}`);
    return await reply;
  } finally {
    s.close();
  }
}

describe('passt behind an internal switch', () => {
  it('refuses passt settings that cannot work', () => {
    const base = { version: 1, id: '0f0e0d0c-0b0a-4909-8807-060504030201', name: 'x', type: 'internal' };
    expect(switchDefinitionProblems({ ...base, passt: { guestAddress: '10.0.2.15/24', gateway: '10.0.2.2', forwards: ['udp:5000:7'] } })).toEqual([]);
    expect(switchDefinitionProblems({ ...base, type: 'private', passt: { guestAddress: '10.0.2.15/24', gateway: '10.0.2.2', forwards: [] } })).toEqual([
      'passt: a private switch has no host side',
    ]);
    expect(
      switchDefinitionProblems({
        ...base,
        passt: { guestAddress: '10.0.2.300/24', gateway: '10.0.2.15', forwards: ['udp:0:7', 'icmp:1:2', 'tcp:80:8', 'tcp:80:9'] },
      }),
    ).toEqual([
      'passt.guestAddress: must be a.b.c.d/prefix (prefix 8..30)',
      'passt.forwards: "udp:0:7": ports are 1..65535',
      'passt.forwards: "icmp:1:2" is not udp|tcp:HOSTPORT:GUESTPORT',
      'passt.forwards: host port tcp:80 is forwarded twice',
    ]);
  });

  it("a host process reaches a VM's UDP echo through passt; passt is restarted when it dies and ends with the switch", { timeout: 120_000 }, async () => {
    const vmms = await fx.vmms({ dataDir: fx.dataDir() });
    const port = await freeUdpPort();
    const sw = await vmms.switches.create({ name: 'outside', type: 'internal', passt: { forwards: [`udp:${port}:7`] } });
    expect(sw.passt).toMatchObject({ guestAddress: '10.0.2.15/24', gateway: '10.0.2.2', forwards: [`udp:${port}:7`] });
    const first = await waitFor('passt on the switch', () => {
      const v = vmms.switches.get('outside')!;
      return v.passt?.state === 'running' && v.ports.some((p) => p.kind === 'internal') && v.passt.pid;
    });
    vmms.defineVm({
      name: 'web',
      memoryBytes: 32 * MiB,
      imagePath: guestImagePath('ref-enlightened'),
      devices: [{ kind: 'network-adapter', switch: 'outside' }],
    });
    expect((await vmms.start('web')).returnValue).toBe(0);
    await waitFor('the prompt', () => vmms.console('web').includes(PROMPT), 60_000);
    const at = vmms.console('web').length;
    await vmms.consoleInput('web', new TextEncoder().encode('ip dhcp\r'));
    await waitFor('the address', () => vmms.console('web').indexOf('address 10.0.2.15/24', at) >= 0, 30_000);
    // The address came from passt's DHCP server (OFFER, then ACK), with its gateway as the router.
    expect(vmms.console('web').slice(at)).toContain('dhcp: 10.0.2.15/24 from 10.0.2.2, router 10.0.2.2');

    const data = Buffer.from('tsvisor through passt \x00\xff' + 'x'.repeat(1000), 'latin1');
    expect(Buffer.compare(await echoThroughPasst(port, data), data)).toBe(0);

    process.kill(first, 'SIGKILL');
    const second = await waitFor(
      'passt started again',
      () => {
        const v = vmms.switches.get('outside')!.passt!;
        return v.restarts >= 1 && v.state === 'running' && v.pid !== first && v.pid;
      },
      30_000,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify(vmms.switches.get('outside')!.passt)}`);
    });
    // Once: the new passt was connected to as soon as it listened (a refused connection before that is retried, not a failure).
    expect(vmms.switches.get('outside')!.passt!).toMatchObject({ restarts: 1, state: 'running' });
    expect(vmms.switches.get('outside')!.passt!.lastError).toMatch(/passt exited \(SIGKILL\)|passt closed its socket/);
    expect(Buffer.compare(await echoThroughPasst(port, data), data)).toBe(0);

    await vmms.turnOff('web');
    await vmms.switches.remove('outside');
    await waitFor('passt gone', () => !processAlive(second), 10_000);
    await vmms.close();
  });
});
