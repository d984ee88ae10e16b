/**
 * The Linux guest as a VMMS-managed VM: one boot, in its own worker process, of Debian's
 * unmodified i686 kernel with a SCSI disk and a synthetic NIC from the definition. Through the management model
 * (the CIM object manager the CIM-XML service serves): Msvm_HeartbeatComponent reaches OK,
 * Msvm_KvpExchangeComponent carries the intrinsic items Debian's hv_kvp_daemon fills in, what
 * needs the VM's state captured is refused with why while the VM runs on, hv_netvsc gets a link
 * on a VMMS switch and pings an SDK guest there, and
 * Msvm_ShutdownComponent.InitiateShutdown (Stop-VM, `vm stop`) has hv_utils power Linux off
 * cleanly: the VM goes Off and its worker is gone.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CimInstance } from '../../root-partition/management/cim/instance.ts';
import { executeWql } from '../../root-partition/management/wql/query-executor.ts';
import { startCimService, type CimService } from '../../root-partition/vmms/cim-binding.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { EnabledState } from '../../root-partition/vmms/lifecycle.ts';
import type { Vmms } from '../../root-partition/vmms/vmms.ts';
import { LINUX_GUEST_DIR, LINUX_GUEST_MANIFEST } from '../../root-partition/x86/linux-guest-files.ts';
import { KvpPool } from '../../root-partition/vsp/ic/kvp-protocol.ts';
import { LINUX_GUEST_FQDN } from '../../scripts/linux-guest/kvp-daemon.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { MiB, processAlive, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';
import { linuxGuestUnavailable } from './linux-guest-available.ts';

const unavailable = linuxGuestUnavailable();
if (unavailable) console.warn(`skipping the VMMS-managed Linux guest test: ${unavailable}`);

/** Boot budget, as in linux-guest.test.ts: 43 s to the shell on a quiet machine, minutes under heavy load. */
const BOOT_MS = 420_000;
const WRITTEN = 'tsvisor-vmms-scsi-ok';

describe.skipIf(unavailable !== undefined)('the Linux guest managed by VMMS', () => {
  const fx = new VmmsFixture();
  let v: Vmms;
  let disk: string;
  let pid = 0;
  let cim: CimService | undefined;
  let id = '';
  afterAll(async () => {
    await cim?.close();
    expect(await fx.cleanup()).toEqual([]);
  });
  /** The VM's integration component of `className`, as a management client reads it. */
  const row = (className: string) => {
    const r = executeWql(cim!.manager, `SELECT * FROM ${className} WHERE SystemName = '${id}'`);
    if (r.kind !== 'instances' || r.rows.length !== 1) throw new Error(`no ${className} of the VM`);
    return r.rows[0]!;
  };
  const component = (className: string): CimInstance => row(className).instance;

  it(
    'starts in its own worker, boots Linux on the SCSI disk of its definition, and reports the heartbeat OK through management',
    async () => {
      const dataDir = fx.dataDir();
      await buildGuests(['ref-enlightened']);
      v = await fx.vmms({ dataDir, storageRoots: [dataDir, LINUX_GUEST_DIR, dirname(guestImagePath('ref-enlightened'))] });
      // A private switch with an SDK guest on it for Linux to ping (it boots in a moment, Linux in a minute or more).
      await v.switches.create({ name: 'lab', type: 'private' });
      v.defineVm({
        name: 'peer',
        memoryBytes: 32 * MiB,
        imagePath: guestImagePath('ref-enlightened'),
        automaticStopAction: 'turn-off',
        devices: [{ kind: 'network-adapter', switch: 'lab' }],
      });
      expect(await v.start('peer')).toMatchObject({ returnValue: 0 });
      cim = await startCimService(v, { cimPort: null, httpsPort: null });
      disk = join(dataDir, 'lx.raw');
      writeFileSync(disk, new Uint8Array(8 * MiB));
      id = v.defineVm({
        name: 'lx',
        guest: 'linux',
        memoryBytes: 128 * MiB,
        imagePath: LINUX_GUEST_MANIFEST,
        automaticStopAction: 'turn-off',
        devices: [
          { kind: 'integration-services' },
          { kind: 'scsi-controller', disks: [{ location: 0, path: disk }] },
          { kind: 'network-adapter', switch: 'lab' },
        ],
      }).id;
      expect(await v.start('lx')).toMatchObject({ returnValue: 0 });
      const vm = v.get('lx')!;
      expect(vm.state).toBe('Running');
      pid = vm.processId!;
      expect(processAlive(pid)).toBe(true);
      await waitFor('the shell', () => v.console('lx').includes('tsvisor-linux: init done'), BOOT_MS);
      expect(v.console('lx')).toContain('hv_vmbus: Vmbus version:5.3');
      expect(v.console('lx')).toContain('sd 0:0:0:0: [sda] 16384 512-byte logical blocks');
      await waitFor('heartbeat OK', () => (component('Msvm_HeartbeatComponent').get('OperationalStatus') as number[])[0] === 2, 60_000);
      expect(component('Msvm_HeartbeatComponent').get('StatusDescriptions')).toEqual(['OK']);
      expect(await v.heartbeatStatus('lx')).toBe(2);
    },
    BOOT_MS + 90_000,
  );

  it("has the guest's intrinsic KVP items from Debian's hv_kvp_daemon in Msvm_KvpExchangeComponent's GuestIntrinsicExchangeItems", async () => {
    const intrinsic = () =>
      new Map(
        ((component('Msvm_KvpExchangeComponent').get('GuestIntrinsicExchangeItems') as CimInstance[] | null) ?? []).map((x) => [
          String(x.get('Name')),
          String(x.get('Data')),
        ]),
      );
    const items = await waitFor('the intrinsic items', () => (intrinsic().has('FullyQualifiedDomainName') ? intrinsic() : null), 60_000);
    // gethostname + getaddrinfo(AI_CANONNAME) over the initramfs's /etc/hosts; /etc/os-release from Debian's base-files; uname.
    expect(items.get('FullyQualifiedDomainName')).toBe(LINUX_GUEST_FQDN);
    expect(items.get('OSName')).toBe('Debian GNU/Linux');
    expect(items.get('OSMajorVersion')).toBe('12');
    // uname's release: whole as the build number, up to its first '-' as the version (tools/hv/hv_kvp_daemon.c kvp_get_os_info).
    const release = JSON.parse(readFileSync(LINUX_GUEST_MANIFEST, 'utf8')).kernelVersion as string;
    expect(items.get('OSBuildNumber')).toBe(release);
    expect(items.get('OSVersion')).toBe(release.split('-')[0]);
    expect(items.get('ProcessorArchitecture')).toBe('i686');
    // A host item through the worker's KVP requests: hv_kvp_daemon keeps it in its External pool's
    // file (records of key[512] then value[2048], each NUL-terminated UTF-8), which the guest reads.
    await v.kvpSet('lx', KvpPool.External, 'tsvisor-owner', 'linux-vmms-test');
    const at = v.console('lx').length;
    const pool = '/var/lib/hyperv/.kvp_pool_0';
    const firstString = (from: string) => `$(${from} | tr '\\000' '\\n' | head -n 1)`;
    const key = firstString(`cat ${pool}`),
      value = firstString(`dd if=${pool} bs=512 skip=1 count=4 2>/dev/null`);
    await v.consoleInput('lx', new TextEncoder().encode(`echo pool0 key=${key} value=${value}; echo pool-$((40+2))\n`));
    await waitFor('the pool file', () => v.console('lx').slice(at).includes('pool-42'), 30_000);
    expect(v.console('lx').slice(at)).toContain('pool0 key=tsvisor-owner value=linux-vmms-test');
    // Read back by the host: Linux answers a GET with an empty value, so the value comes from its ENUMERATE (kvp-vsp.ts).
    expect(await v.kvpGet('lx', KvpPool.External, 'tsvisor-owner')).toBe('linux-vmms-test');
    expect(await v.kvpGet('lx', KvpPool.External, 'no-such-item')).toBeNull();
  }, 70_000);

  it('gets a link through hv_netvsc on the VM switch and pings the SDK guest on it', async () => {
    const peerAt = v.console('peer').length;
    await v.consoleInput('peer', new TextEncoder().encode('ip 10.0.2.2/24\r'));
    await waitFor("the peer's address", () => v.console('peer').slice(peerAt).includes('address 10.0.2.2/24'), 20_000);
    const at = v.console('lx').length;
    await v.consoleInput(
      'lx',
      new TextEncoder().encode('ip link set eth0 up; ip addr add 10.0.2.5/24 dev eth0; ip link show eth0; ping -c 2 -W 10 10.0.2.2; echo ping-status-$?\n'),
    );
    await waitFor('the ping', () => /ping-status-\d/.test(v.console('lx').slice(at)), 90_000);
    const out = v.console('lx').slice(at);
    expect(out).toMatch(/eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500/);
    expect(out).toMatch(/2 packets transmitted, 2 packets received, 0% packet loss/);
    expect(out).toContain('ping-status-0');
    expect(v.switches.get('lab')!.ports.length).toBe(2);
  }, 100_000);

  it('takes console input and writes through hv_storvsc into the host file of the definition', async () => {
    await v.consoleInput('lx', new TextEncoder().encode(`echo ${WRITTEN} | dd of=/dev/sda bs=512 seek=3 conv=sync,fsync 2>/dev/null && echo dd-$((40+2))\n`));
    await waitFor('the write', () => v.console('lx').includes('dd-42'), 60_000);
    expect(
      readFileSync(disk)
        .subarray(3 * 512, 3 * 512 + WRITTEN.length)
        .toString('latin1'),
    ).toBe(WRITTEN);
  }, 70_000);

  it('refuses save and pause with why, and the VM runs on', async () => {
    const saved = await v.save('lx');
    expect(saved.returnValue).not.toBe(0);
    expect(saved.error).toMatch(/cannot be saved: .*v86's own rather than the partition's shared memory/);
    const paused = await v.pause('lx');
    expect(paused.returnValue).not.toBe(0);
    expect(paused.error).toMatch(/cannot be paused/);
    expect(v.get('lx')!.state).toBe('Running');
    expect(await v.heartbeatStatus('lx')).toBe(2);
  }, 30_000);

  it('shuts down through hv_utils on Stop-VM: Linux powers off, the VM is Off and its worker gone', async () => {
    const r = await cim!.manager.invokeMethod(row('Msvm_ShutdownComponent').path, 'InitiateShutdown', { Force: false, Reason: 'test' });
    expect(r.returnValue).toBe(0);
    await waitFor('Off', () => v.get('lx')!.enabledState === EnabledState.Off, 30_000);
    expect(v.console('lx')).toContain('reboot: Power down');
    await waitFor('the worker to exit', () => !processAlive(pid), 10_000);
  }, 90_000);

  it('a killed Linux worker takes only its VM down: Off and Critical, and its disk lock is gone with it', async () => {
    expect(await v.start('lx')).toMatchObject({ returnValue: 0 });
    const victim = v.get('lx')!.processId!;
    // The disk is held: another writer is refused while the worker lives.
    expect(() => openDisk(disk)).toThrow(/is in use/);
    process.kill(victim, 'SIGKILL');
    await waitFor('Off', () => v.get('lx')!.enabledState === EnabledState.Off, 10_000);
    expect(v.get('lx')).toMatchObject({ healthState: 25, processId: null, lastError: expect.stringMatching(/ended unexpectedly/) });
    openDisk(disk).close();
  }, 60_000);
});
