/**
 * NICs from VM definitions on a switch VMMS owns, with real worker processes: an unenlightened VM
 * (legacy NIC, NE2000) and an enlightened one (synthetic NIC, netvsc) on one private switch ping
 * each other; a VMMS restart leaves both running and their NICs rejoin the next VMMS's switch;
 * the synthetic NIC's VM is saved, started again in a new worker and pings again (netvsp's channel
 * restored, the NIC back on the switch), and survives a checkpoint taken while it runs and one
 * applied; a worker killed with SIGKILL takes only its own port off the switch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vmms } from '../../root-partition/vmms/vmms.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { MiB, processAlive, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
const PROMPT = 'tsvisor> ';

beforeAll(async () => {
  await buildGuests(['ref-emulated', 'ref-enlightened']);
}, 120_000);
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

/** Types a line on the VM's console and returns what it printed before the next prompt. */
async function command(vmms: Vmms, vm: string, line: string, timeoutMs = 20_000): Promise<string> {
  const start = vmms.console(vm).length;
  await vmms.consoleInput(vm, new TextEncoder().encode(line + '\r'));
  const out = await waitFor(
    `the prompt after "${line}" on ${vm}`,
    () => {
      const text = vmms.console(vm);
      const at = text.indexOf(PROMPT, start);
      return at >= 0 ? text.slice(start, at) : undefined;
    },
    timeoutMs,
  );
  return out;
}

describe('network adapters in VM definitions, switches in VMMS', () => {
  it('legacy and synthetic NICs ping across a VMMS switch; restart reattaches; a killed worker takes only its port', { timeout: 180_000 }, async () => {
    const dataDir = fx.dataDir();
    let vmms = await fx.vmms({ dataDir });
    const lab = await vmms.switches.create({ name: 'lab', type: 'private' });
    expect(lab).toMatchObject({ name: 'lab', type: 'private', running: true, ports: [] });
    vmms.defineVm({
      name: 'legacy',
      memoryBytes: 32 * MiB,
      imagePath: guestImagePath('ref-emulated'),
      devices: [{ kind: 'network-adapter', legacy: true, switch: 'lab', mac: '00:15:5d:30:00:01' }],
    });
    vmms.defineVm({
      name: 'synthetic',
      memoryBytes: 32 * MiB,
      imagePath: guestImagePath('ref-enlightened'),
      devices: [{ kind: 'network-adapter', switch: 'lab' }],
    });
    // A NIC naming a switch that does not exist keeps its VM off, with the reason.
    vmms.defineVm({
      name: 'lost',
      memoryBytes: 32 * MiB,
      imagePath: guestImagePath('ref-enlightened'),
      devices: [{ kind: 'network-adapter', switch: 'nowhere' }],
    });
    const lost = await vmms.start('lost');
    expect(lost.returnValue).not.toBe(0);
    expect(lost.error).toContain('switch "nowhere", which does not exist');

    await Promise.all([vmms.start('legacy'), vmms.start('synthetic')]);
    await waitFor('both prompts', () => vmms.console('legacy').includes(PROMPT) && vmms.console('synthetic').includes(PROMPT), 60_000);
    expect(vmms.console('legacy')).toContain('network: ne2000 (RTL8029) at 0xc100 irq 11');
    expect(vmms.console('synthetic')).toMatch(/network: netvsc \(VMBus relid \d+, NVSP 6\.1, link (up|down)\)/);
    await waitFor('two ports on the switch', () => vmms.switches.get('lab')!.ports.length === 2);
    expect(await command(vmms, 'legacy', 'ip 10.0.2.1/24')).toContain('mac 00:15:5d:30:00:01');
    // The synthetic adapter's MAC was derived from the VM id, inside Hyper-V's 00:15:5d prefix.
    expect(await command(vmms, 'synthetic', 'ip 10.0.2.2/24')).toMatch(/mac 00:15:5d:[0-9a-f:]{8}, address 10\.0\.2\.2\/24/);
    expect(await command(vmms, 'legacy', 'ping 10.0.2.2 2')).toContain('2 packets transmitted, 2 received');
    expect(await command(vmms, 'synthetic', 'ping 10.0.2.1 2')).toContain('2 packets transmitted, 2 received');
    const ports = vmms.switches.get('lab')!.ports;
    expect(ports.map((p) => p.kind).sort()).toEqual(['emulated', 'synthetic']);
    expect(ports.map((p) => p.name).sort()).toEqual(['Legacy Network Adapter', 'Network Adapter']);

    const linkChanges = async () => Number(/link_changes=(\d+)/.exec(await command(vmms, 'synthetic', 'counters'))?.[1] ?? NaN);
    const changesBefore = await linkChanges();

    // VMMS restarts; the VMs run on and their NICs rejoin the switch of the next VMMS.
    const pids = vmms
      .list()
      .filter((v) => v.processId)
      .map((v) => v.processId!);
    await fx.detach(vmms);
    vmms = await fx.vmms({ dataDir });
    expect(vmms.switches.list().map((s) => ({ id: s.id, name: s.name }))).toEqual([{ id: lab.id, name: 'lab' }]);
    await waitFor('both NICs back on the switch', () => vmms.switches.get('lab')!.ports.length === 2, 10_000);
    expect(await command(vmms, 'legacy', 'ping 10.0.2.2 2')).toContain('2 packets transmitted, 2 received');
    // The synthetic NIC's guest was told: MEDIA_DISCONNECT when the switch went, MEDIA_CONNECT when it came back.
    expect(await linkChanges()).toBe(changesBefore + 2);
    expect(await command(vmms, 'synthetic', 'ip')).toMatch(/netvsc \(VMBus relid \d+, NVSP 6\.1, link up\)/);

    // Saved with its synthetic NIC open, restored in a new worker: the guest continues, the NIC rejoins the switch.
    const savedPid = vmms.get('synthetic')!.processId!;
    const save = await vmms.save('synthetic');
    expect(save, save.error).toMatchObject({ returnValue: 0, vm: { enabledState: 6 } });
    await waitFor('the saved worker to exit', () => !processAlive(savedPid), 10_000);
    await waitFor('its port off the switch', () => vmms.switches.get('lab')!.ports.length === 1, 10_000);
    expect((await vmms.start('synthetic')).returnValue).toBe(0);
    expect(vmms.get('synthetic')!.processId).not.toBe(savedPid);
    await waitFor('the restored NIC on the switch', () => vmms.switches.get('lab')!.ports.length === 2, 10_000);
    expect(await command(vmms, 'synthetic', 'ping 10.0.2.1 2')).toContain('2 packets transmitted, 2 received');
    expect(await command(vmms, 'legacy', 'ping 10.0.2.2 2')).toContain('2 packets transmitted, 2 received');
    // The link was up at the save and came back up: the guest was told nothing.
    expect(await linkChanges()).toBe(changesBefore + 2);
    // A checkpoint while it runs (the same saved state, then the VM goes on), and that checkpoint applied and started.
    const cp = await vmms.checkpoints.create('synthetic', 'networked');
    expect(cp.returnValue, cp.error).toBe(0);
    expect(await command(vmms, 'synthetic', 'ping 10.0.2.1 1')).toContain('1 packets transmitted, 1 received');
    const applied = await vmms.checkpoints.apply('synthetic', vmms.checkpoints.list('synthetic')[0]!.id);
    expect(applied.returnValue, applied.error).toBe(0);
    expect((await vmms.start('synthetic')).returnValue).toBe(0);
    await waitFor('the NIC on the switch after the apply', () => vmms.switches.get('lab')!.ports.length === 2, 10_000);
    expect(await command(vmms, 'synthetic', 'ping 10.0.2.1 2')).toContain('2 packets transmitted, 2 received');

    // The legacy VM's worker is killed: its port goes, the other stays and its VM runs on.
    process.kill(vmms.get('legacy')!.processId!, 'SIGKILL');
    await waitFor('one port left', () => vmms.switches.get('lab')!.ports.length === 1, 10_000);
    expect(vmms.switches.get('lab')!.ports[0]!.kind).toBe('synthetic');
    expect(vmms.get('synthetic')!.enabledState).toBe(2);
    expect(await command(vmms, 'synthetic', 'ping 10.0.2.1 1')).toContain('1 packets transmitted, 0 received');
    expect(pids.filter(processAlive).length).toBe(0);
  });
});
