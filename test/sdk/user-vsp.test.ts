/**
 * The tutorial's device in real VMs: a project made by `tsvisor sdk new` (the ping device: a VSP in
 * TypeScript, a VSC in the guest), its VSP loaded by `tsvisor run --vsp` and, in a managed VM, by
 * the worker from the VM's definition (`tsvisor vm vsp add`) — the guest's ten requests answered
 * by the project's own code. Modules outside the storage roots, or writable by others, are refused.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildGuestImage } from '../../root-partition/sdk/guest-image.ts';
import { scaffoldProject } from '../../root-partition/sdk/scaffold.ts';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import { LiveDaemon, run, TSVISOR } from '../management/live-daemon.ts';

let daemon: LiveDaemon;
let project: string;
let image: string;
let vspModule: string;
const tsvisor = (...args: string[]) => run(process.execPath, [TSVISOR, ...args], 120_000);
const vm = (...args: string[]) => tsvisor('vm', '--data-dir', daemon.dataDir, ...args);

beforeAll(async () => {
  daemon = await LiveDaemon.start();
  // In the service's disks/ directory: a storage root of every host, so the project's image and
  // module may be used by a managed VM.
  project = join(daemon.dataDir, 'disks', 'ping-project');
  scaffoldProject(project, { device: 'ping' });
  image = join(project, 'build', 'guest.wasm');
  await buildGuestImage(join(project, 'guest', 'main.ts'), image);
  vspModule = join(project, 'host', 'ping-vsp.ts');
}, 240_000);

afterAll(async () => {
  if (daemon) expect(await daemon.stop()).toEqual([]);
}, 60_000);

describe('a VSP written with the SDK', () => {
  it('tsvisor run --vsp offers it on VMBus: the guest gets its ten answers', { timeout: 180_000 }, async () => {
    const r = await tsvisor('run', image, '--vsp', vspModule);
    expect(r.stderr).toMatch(/VP 0: halted/);
    expect(r.stdout).toContain('connected=1\nopened=1\nreplies=10\nwrong=0\nunloaded=1\ndone\n');
    const wrong = await tsvisor('run', image, '--vsp', `${vspModule}#Nope`);
    expect([wrong.code, wrong.stderr]).toEqual([1, `tsvisor: ${vspModule} has no export "Nope" that is a class (its classes: PingVsp)\n`]);
  });

  it('a managed VM loads it from its definition (vm vsp add) and the guest is answered by it', { timeout: 180_000 }, async () => {
    expect((await vm('new', 'ping', '--image', image, '-m', '16M')).code).toBe(0);
    const added = await vm('vsp', 'add', 'ping', vspModule, '--export', 'PingVsp');
    expect([added.code, added.stdout]).toEqual([0, `ping: VSP ${vspModule}#PingVsp added\n`]);
    const listed = await vm('vsp', 'list', 'ping', '--json');
    expect(JSON.parse(listed.stdout)).toEqual([{ index: 0, module: vspModule, export: 'PingVsp' }]);
    expect((await vm('start', 'ping')).code).toBe(0);
    const c = await VmmsClient.connect(daemon.dataDir);
    try {
      const out = await vi.waitFor(
        async () => {
          const text = await c.call<string>('console', { vm: 'ping' });
          expect(text).toContain('done\n');
          return text;
        },
        { timeout: 60_000, interval: 100 },
      );
      expect(out).toContain('opened=1\nreplies=10\nwrong=0\n');
    } finally {
      c.close();
    }
    expect((await vm('stop', 'ping', '--turn-off')).code).toBe(0);
    const removed = await vm('vsp', 'rm', 'ping', '0');
    expect([removed.code, removed.stdout]).toEqual([0, `ping: VSP ${vspModule} removed\n`]);
    expect(JSON.parse((await vm('vsp', 'list', 'ping', '--json')).stdout)).toEqual([]);
  });

  it('a module outside the storage roots, or one others may change, is refused with the reason', { timeout: 180_000 }, async () => {
    expect((await vm('new', 'bad', '--image', image, '-m', '16M')).code).toBe(0);
    const outside = await vm('vsp', 'add', 'bad', TSVISOR.replace(/bin\/tsvisor\.mjs$/, 'root-partition/vsp/echo/echo-vsp.ts'));
    expect(outside.code).toBe(1);
    expect(outside.stderr).toMatch(/^tsvisor: VSP module \S+echo-vsp.ts is not in a storage root this host allows \(/);
    const loose = join(project, 'loose');
    mkdirSync(loose);
    const module = join(loose, 'loose-vsp.ts');
    writeFileSync(module, "export { PingVsp } from '../host/ping-vsp.ts';\n");
    chmodSync(module, 0o666);
    expect((await vm('vsp', 'add', 'bad', module)).code).toBe(0);
    const start = await vm('start', 'bad');
    expect(start.code).toBe(1);
    expect(start.stderr).toContain(
      `VSP module ${module}: the module is writable by everyone (mode 666); a VSP module is code the worker runs, so only its owner may change it`,
    );
  });
});
