/**
 * A VM definition naming the Linux guest (`guest: 'linux'`): what it may have, and each setting it
 * cannot have refused with why (linux-vm-rules.ts); its manifest read through the storage roots,
 * with every file it names held to them (linux-guest-manifest.ts). Pure, no guest boots.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CimObjectPath } from '../../root-partition/management/cim/object-path.ts';
import { createVirtualizationSchema } from '../../root-partition/management/cim/schema.ts';
import { startCimService, type CimService } from '../../root-partition/vmms/cim-binding.ts';
import { Vmms } from '../../root-partition/vmms/vmms.ts';
import { definitionProblems, newDefinition } from '../../root-partition/vmms/vm-definition.ts';
import { readLinuxGuestManifest } from '../../root-partition/x86/linux-guest-manifest.ts';
import { linuxVmRefusal } from '../../root-partition/x86/linux-vm-rules.ts';

const MiB = 1 << 20;
const base = {
  version: 1,
  id: '0b6f3c2e-1d4a-4e5f-8a9b-0c1d2e3f4a5b',
  name: 'lx',
  memoryBytes: 128 * MiB,
  vpCount: 1,
  imagePath: '/srv/linux-guest/manifest.json',
  cmdline: '',
  automaticStopAction: 'turn-off',
  devices: [{ kind: 'integration-services' }, { kind: 'scsi-controller', disks: [{ location: 0, path: '/srv/disks/lx.raw' }] }],
  guest: 'linux',
};

describe('a Linux VM definition', () => {
  it('is valid with one VP, 64 MiB..768 MiB, turn-off, a SCSI controller, the integration services and synthetic NICs', () => {
    expect(definitionProblems(base)).toEqual([]);
    expect(definitionProblems({ ...base, devices: [...base.devices, { kind: 'network-adapter' }] })).toEqual([]);
    expect(definitionProblems({ ...base, memoryBytes: 64 * MiB })).toEqual([]);
    expect(definitionProblems({ ...base, memoryBytes: 768 * MiB })).toEqual([]);
  });

  it('refuses what the x86 VP kind cannot give, each setting with why', () => {
    const p = definitionProblems({
      ...base,
      vpCount: 2,
      memoryBytes: 32 * MiB,
      automaticStopAction: 'save',
      cpuWeight: 200,
      devices: [
        ...base.devices,
        { kind: 'ide-disk', controller: 0, position: 0, path: '/srv/disks/a.raw' },
        { kind: 'scsi-controller', disks: [] },
        { kind: 'network-adapter', legacy: true },
      ],
    });
    expect(p).toEqual([
      'vpCount: must be 1 for the Linux guest (v86 emulates one processor)',
      'memoryBytes: must be from 64 MiB to 768 MiB for the Linux guest',
      expect.stringMatching(/^automaticStopAction: must be 'turn-off' for the Linux guest \(.*v86's own rather than the partition's shared memory/),
      expect.stringMatching(/^cpuWeight: not available for the Linux guest \(CPU shares/),
      'devices[2]: a ide-disk is not available to the Linux guest yet (it has scsi-controller, integration-services and network-adapter)',
      "devices[4]: a legacy network adapter is not available to the Linux guest (its PCI bus is v86's); use a synthetic one (hv_netvsc)",
      'devices: the Linux guest has one SCSI controller',
    ]);
  });

  it('names the guest kind exactly; a WebAssembly VM keeps its own rules', () => {
    expect(definitionProblems({ ...base, guest: 'windows' })).toEqual([
      "guest: must be 'linux' (the built-in Linux guest) or absent (a WebAssembly guest image)",
    ]);
    const { guest: _, ...wasm } = base;
    expect(definitionProblems({ ...wasm, vpCount: 2, automaticStopAction: 'save', cpuWeight: 200 })).toEqual([]);
  });

  it("defaults a new Linux VM's automatic stop action to turn-off (it cannot be saved)", () => {
    const d = newDefinition({ name: 'lx', guest: 'linux', memoryBytes: 128 * MiB, imagePath: base.imagePath });
    expect(d.automaticStopAction).toBe('turn-off');
    expect(d.guest).toBe('linux');
    expect(newDefinition({ name: 'w', memoryBytes: 32 * MiB, imagePath: '/srv/g.wasm' }).automaticStopAction).toBe('save');
  });

  it('says why each capture of a running Linux VM is refused', () => {
    expect(linuxVmRefusal('save')).toMatch(/^a Linux VM cannot be saved: .*v86's own rather than the partition's shared memory.*; shut it down/);
    expect(linuxVmRefusal('migrate')).toMatch(/cannot be migrated live/);
  });
});

describe('the Linux guest manifest through the storage roots', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsv-lxm-'));
  const root = join(dir, 'root');
  const outside = join(dir, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  for (const f of ['bios.bin', 'vga.bin', 'vmlinuz', 'initrd.gz']) writeFileSync(join(root, f), 'x');
  writeFileSync(join(outside, 'secret'), 'host file');
  const manifest = (kernel: string) => {
    const path = join(root, 'manifest.json');
    writeFileSync(
      path,
      JSON.stringify({
        kernelVersion: '6.1',
        bios: join(root, 'bios.bin'),
        vgaBios: join(root, 'vga.bin'),
        kernel,
        initramfs: join(root, 'initrd.gz'),
        modules: [],
      }),
    );
    return path;
  };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a manifest whose files are all in the roots', () => {
    expect(readLinuxGuestManifest(manifest(join(root, 'vmlinuz')), [root]).kernel).toBe(join(root, 'vmlinuz'));
  });

  it('refuses a manifest naming a host file outside the roots as the kernel (it would be loaded into the guest)', () => {
    expect(() => readLinuxGuestManifest(manifest(join(outside, 'secret')), [root])).toThrow(/guest image .*secret is not in a storage root/);
  });

  it('refuses a manifest outside the roots, and one that is not a manifest', () => {
    writeFileSync(join(outside, 'manifest.json'), '{}');
    expect(() => readLinuxGuestManifest(join(outside, 'manifest.json'), [root])).toThrow(/is not in a storage root/);
    writeFileSync(join(root, 'bad.json'), '{"kernelVersion": 6}');
    expect(() => readLinuxGuestManifest(join(root, 'bad.json'), [root])).toThrow(/bios must be a non-empty string/);
  });
});

describe('DefineSystem with GuestKind (the management model, no guest started)', () => {
  const schema = createVirtualizationSchema();
  let dir: string;
  let vmms: Vmms;
  let cim: CimService;
  let manifest: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsv-lxp-'));
    manifest = join(dir, 'manifest.json');
    writeFileSync(manifest, '{}');
    vmms = await Vmms.open({ dataDir: join(dir, 'data') });
    cim = await startCimService(vmms, { cimPort: null, httpsPort: null });
  });
  afterAll(async () => {
    await cim.close();
    await vmms.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const define = (name: string, settings: Record<string, unknown>, vps = 1n) =>
    cim.manager.invokeMethod(cim.manager.enumerateInstanceNames('Msvm_VirtualSystemManagementService')[0]!, 'DefineSystem', {
      SystemSettings: schema.createInstance('Msvm_VirtualSystemSettingData', { ElementName: name, GuestImagePath: manifest, ...settings }),
      ResourceSettings: [
        schema.createInstance('Msvm_MemorySettingData', { VirtualQuantity: 128n }),
        schema.createInstance('Msvm_ProcessorSettingData', { VirtualQuantity: vps }),
      ],
    });

  it("defines a Linux VM, and its settings read back GuestKind 'linux'", async () => {
    const r = await define('lx', { GuestKind: 'linux', AutomaticShutdownAction: 2 });
    expect(r.returnValue).toBe(0);
    const id = String((r.out.ResultingSystem as CimObjectPath).keys[1]!.value);
    expect(vmms.get(id)).toMatchObject({ guest: 'linux', automaticStopAction: 'turn-off' });
    expect(
      cim.manager
        .getInstance(cim.manager.enumerateInstanceNames('Msvm_VirtualSystemSettingData').find((p) => String(p.keys[0]!.value).includes(id))!)
        .get('GuestKind'),
    ).toBe('linux');
  });

  it('refuses an unknown guest kind, and a Linux VM with what it cannot have, saying why', async () => {
    const bad = await define('x', { GuestKind: 'windows' });
    expect(bad.returnValue).not.toBe(0);
    const two = await define('y', { GuestKind: 'linux', AutomaticShutdownAction: 2 }, 2n);
    expect(two.returnValue).toBe(4096); // a job, which ends failed with why
    const job = cim.manager.getInstance(two.out.Job as CimObjectPath);
    expect(String(job?.get('ErrorDescription'))).toContain('vpCount: must be 1 for the Linux guest (v86 emulates one processor)');
    expect(vmms.list().map((x) => x.name)).toEqual(['lx']);
  });
});
