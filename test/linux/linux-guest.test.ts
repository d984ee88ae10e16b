/**
 * Debian's unmodified i686 kernel on the x86 VP kind, through `tsvisor run linux --scsi --disk --nic`:
 * one boot shared by every assertion (a boot takes tens of seconds of CPU on an emulated
 * processor). Linux's own hv_vmbus, hv_utils, hv_storvsc and hv_netvsc against our VMBus,
 * integration services, storvsp and netvsp (on the command's own switch, passt behind it), and
 * its ata_piix against our emulated PIIX4 IDE.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { linuxGuestUnavailable } from './linux-guest-available.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tsvisor.mjs');
const unavailable = linuxGuestUnavailable();
if (unavailable) console.warn(`skipping the Linux guest tests: ${unavailable}`);

/**
 * Boot budget. The boot costs 25–40 s of CPU on one core; measured wall times to the shell here
 * were 43 s on a quiet machine and 160–300 s with the host's load average at 15–20 (v86 runs the
 * vCPU on one thread, so it gets its share of two cores and no more).
 */
const BOOT_MS = 420_000;

/** The SCSI disk: 16 MiB, a signature in sector 0 for the guest to read, sector 8 for it to write. */
const DISK_BYTES = 16 << 20;
const SIGNATURE = 'tsvisor-disk-signature-0001';
const WRITTEN = 'tsvisor-scsi-write-ok';
/** The IDE disk: 8 MiB, its own signature in sector 0, sector 9 for the guest to write. */
const IDE_BYTES = 8 << 20;
const IDE_SIGNATURE = 'tsvisor-ide-signature-0002';
const IDE_WRITTEN = 'tsvisor-ide-write-ok';

/** The /dev name sd gave the disk whose SCSI inquiry line matches `vendorModel` (probing is asynchronous: names follow no fixed order). */
function diskName(console: string, vendorModel: RegExp, blocks: number): string | undefined {
  const host = new RegExp(`scsi (\\d+):0:0:0: Direct-Access\\s+${vendorModel.source}`).exec(console)?.[1];
  if (host === undefined) return undefined;
  return new RegExp(`sd ${host}:0:0:0: \\[(sd[a-z]+)\\] ${blocks} 512-byte logical blocks`).exec(console)?.[1];
}

describe.skipIf(unavailable !== undefined)('tsvisor run linux --scsi disk.raw --disk ide.raw', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvisor-linux-'));
  const disk = join(dir, 'disk.raw');
  const image = new Uint8Array(DISK_BYTES);
  image.set(new TextEncoder().encode(SIGNATURE), 0);
  writeFileSync(disk, image);
  const ideDisk = join(dir, 'ide.raw');
  const ideImage = new Uint8Array(IDE_BYTES);
  ideImage.set(new TextEncoder().encode(IDE_SIGNATURE), 0);
  writeFileSync(ideDisk, ideImage);
  const child = unavailable
    ? undefined
    : spawn(process.execPath, [BIN, 'run', 'linux', '--counters', '--scsi', disk, '--disk', ideDisk, '--nic'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child?.stdout.on('data', (b: Buffer) => (stdout += b.toString('latin1')));
  child?.stderr.on('data', (b: Buffer) => (stderr += b.toString('latin1')));
  const exited = new Promise<number | null>((resolve) => child?.on('exit', (code) => resolve(code)));

  const waitFor = (text: string, from: number, ms: number) =>
    new Promise<number>((resolve, reject) => {
      const t0 = Date.now();
      const poll = setInterval(() => {
        const at = stdout.indexOf(text, from);
        if (at >= 0) {
          clearInterval(poll);
          resolve(at + text.length);
        } else if (Date.now() - t0 > ms || child?.exitCode !== null) {
          clearInterval(poll);
          reject(new Error(`no "${text}" on the console after ${Date.now() - t0} ms; stderr:\n${stderr}\nconsole tail:\n${stdout.slice(-3000)}`));
        }
      }, 100);
    });

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  let prompt = 0;
  it(
    'boots to the busybox shell with the console on our COM1',
    async () => {
      prompt = await waitFor('tsvisor-linux: init done', 0, BOOT_MS);
      prompt = await waitFor('~ # ', prompt, 30_000);
      // With ACPI the port is found through PNP ("00:05: ttyS0 …"): our 16550 answers the probe as a 16550A.
      expect(stdout).toMatch(/ttyS0 at I\/O 0x3f8 \(irq = 4, base_baud = 115200\) is a 16550A/);
    },
    BOOT_MS + 30_000,
  );

  it('detects Microsoft Hyper-V through CPUID 0x40000000 and uses the reference-counter MSR', () => {
    expect(stdout).toContain('Hypervisor detected: Microsoft Hyper-V');
    // Privileges: partition reference counter (0x2), SynIC (0x4), synthetic timers (0x8), hypercall MSRs (0x20),
    // VP index (0x40); PostMessage (0x10) and SignalEvent (0x20); hint 0x200: no AutoEOI (v86's local APIC has
    // none); misc: crash MSRs (0x400) and STIMER direct mode (0x80000).
    expect(stdout).toContain('Hyper-V: privilege flags low 0x6e, high 0x30, hints 0x200, misc 0x80400');
    expect(stdout).toContain('Booting paravirtualized kernel on Hyper-V');
    expect(stdout).toContain('clocksource: Switched to clocksource hyperv_clocksource_msr');
  });

  it('loads hv_vmbus on our VMBus ACPI device: VMBus 5.3 negotiated, hv_utils bound to our integration services', () => {
    // SeaBIOS installed our SSDT from fw_cfg; /init found VMBUS:00 and loaded the modules.
    expect(stdout).toMatch(/ACPI: SSDT 0x[0-9A-F]+ 00004F \(v02 TSVSOR VMBUS {4}00000001 TSVS 00000001\)/);
    expect(stdout).toContain('hv_vmbus: Vmbus version:5.3');
    expect(stdout).toContain('hv_utils: Heartbeat IC version 3.0');
    expect(stdout).toContain('hv_utils: Shutdown IC version 3.2');
    expect(stdout).toContain('hv_utils: TimeSync IC version 4.0');
    // (Its only complaint is the module signature: the certificate parsing is skipped for boot time.)
    expect(stdout).not.toMatch(/hv_(vmbus|utils): (?!module verification failed).*(fail|error|timed out)/i);
  });

  it('sees our SCSI disk through hv_storvsc, reads its first sector and writes one that lands in the host file', async () => {
    expect(stdout).toMatch(/scsi \d+:0:0:0: Direct-Access {5}Msft {5}Virtual Disk {5}1\.0/);
    const sd = diskName(stdout, /Msft\s+Virtual Disk/, 32768);
    expect(sd).toMatch(/^sd[a-z]$/);
    expect(stdout).toContain(`[${sd}] 32768 512-byte logical blocks: (16.8 MB/16.0 MiB)`);
    child!.stdin.write(
      `dd if=/dev/${sd} bs=512 count=1 2>/dev/null | head -c ${SIGNATURE.length} | tr a-z A-Z; echo; echo ${WRITTEN} | dd of=/dev/${sd} bs=512 seek=8 conv=sync,fsync 2>/dev/null && echo dd-done-$((1+1))\n`,
    );
    // Upper-cased by the guest, so the typed command line echoed back does not match.
    const at = await waitFor(`${SIGNATURE.toUpperCase()}\r\n`, prompt, 60_000);
    prompt = await waitFor('dd-done-2', at, 60_000);
    const onHost = readFileSync(disk).subarray(8 * 512, 9 * 512);
    expect(Buffer.from(onHost.subarray(0, WRITTEN.length + 1)).toString('latin1')).toBe(`${WRITTEN}\n`);
    expect(onHost.subarray(WRITTEN.length + 1).every((b) => b === 0)).toBe(true); // conv=sync pads the block with NULs
  }, 130_000);

  it('binds ata_piix to our PIIX4 IDE (UDMA through our bus master, IRQ 14), reads the IDE disk and writes a sector that lands in the host file', async () => {
    expect(stdout).toMatch(/ata1: PATA max UDMA\/33 cmd 0x1f0 ctl 0x3f6 bmdma 0x[0-9a-f]+ irq 14/);
    expect(stdout).toContain('ata1.00: ATA-6: Virtual HD, 1.1.0, max UDMA/100');
    expect(stdout).toContain('ata1.00: 16384 sectors, multi 0: LBA48');
    const sd = diskName(stdout, /ATA\s+Virtual HD/, 16384);
    expect(sd).toMatch(/^sd[a-z]$/);
    child!.stdin.write(
      `dd if=/dev/${sd} bs=512 count=1 2>/dev/null | head -c ${IDE_SIGNATURE.length} | tr a-z A-Z; echo; echo ${IDE_WRITTEN} | dd of=/dev/${sd} bs=512 seek=9 conv=sync,fsync 2>/dev/null && echo dd-done-$((2+2)); grep ata_piix /proc/interrupts\n`,
    );
    const at = await waitFor(`${IDE_SIGNATURE.toUpperCase()}\r\n`, prompt, 60_000);
    prompt = await waitFor('dd-done-4', at, 60_000);
    await waitFor('14-edge      ata_piix', prompt, 30_000);
    const onHost = readFileSync(ideDisk).subarray(9 * 512, 10 * 512);
    expect(Buffer.from(onHost.subarray(0, IDE_WRITTEN.length + 1)).toString('latin1')).toBe(`${IDE_WRITTEN}\n`);
    expect(onHost.subarray(IDE_WRITTEN.length + 1).every((b) => b === 0)).toBe(true);
  }, 130_000);

  it('runs what is typed on COM1 and answers on the console; its clock ticks on our synthetic timer', async () => {
    const hvs = "grep HVS /proc/interrupts | tr -s ' ' | cut -d ' ' -f 2";
    child!.stdin.write(
      `echo tsvisor-$((6*7)); cat /sys/devices/system/clocksource/clocksource0/current_clocksource /sys/devices/system/clockevents/clockevent0/current_device; echo stimer0 $(${hvs}); sleep 1; echo stimer0 $(${hvs}) lapic $(grep LOC /proc/interrupts | tr -s ' ' | cut -d ' ' -f 2)\n`,
    );
    const at = await waitFor('tsvisor-42\r\n', prompt, 30_000);
    // Linux's clockevent is STIMER0 in direct mode (hv_stimer_alloc): vector 0xED, "HVS" in /proc/interrupts.
    const dev = await waitFor('hyperv_clocksource_msr\r\nHyper-V clockevent\r\n', at, 10_000);
    const end = await waitFor(' lapic ', dev, 30_000);
    await waitFor('\r\n', end, 10_000);
    const counts = /stimer0 (\d+)\r\nstimer0 (\d+) lapic (\d+)\r\n/.exec(stdout.slice(dev));
    expect(counts).not.toBeNull();
    const [before, after, lapic] = counts!.slice(1).map(Number) as [number, number, number];
    // A second of `sleep` at HZ 250 with NO_HZ idle: expiries keep coming; the LAPIC timer is never used.
    expect(after - before).toBeGreaterThan(0);
    expect(lapic).toBe(0);
    prompt = end;
  }, 60_000);

  it("reaches a host server through hv_netvsc, the run's switch and passt (the gateway is the host's loopback)", async () => {
    const server = createServer((req, res) => res.end(`tsvisor-http ${req.url}\n`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      child!.stdin.write(
        `ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; ip link show eth0; busybox wget -q -O - http://10.0.2.2:${port}/from-linux; s=$?; echo wget-done-$((s+100))\n`,
      );
      // wget's exit status plus 100, so the typed line echoed back does not match.
      const at = await waitFor('wget-done-1', prompt, 90_000);
      expect(stdout.slice(prompt, at)).toMatch(/eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500/);
      expect(stdout.slice(prompt, at)).toContain('link/ether 00:15:5d:00:00:01');
      expect(stdout.slice(prompt, at)).toContain('tsvisor-http /from-linux\r\n');
      prompt = await waitFor('wget-done-100', prompt, 10_000);
    } finally {
      server.close();
    }
  }, 120_000);

  it('shuts down cleanly when the host asks through the shutdown service (SIGTERM), and reports the enlightenment and VMBus state', async () => {
    // The heartbeat service has had its answers by now (Linux answers every few seconds).
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain("the guest's answer: shut-down");
    // hv_utils' orderly_poweroff: /sbin/poweroff is absent in the initramfs, so the kernel powers off by itself, through ACPI S5.
    expect(stdout).toContain('reboot: Power down');
    expect(stderr).toContain('VP 0: the guest powered off');
    // The run's passt ended with it.
    const passt = Number(/passt (\d+) serves switch run-linux/.exec(stderr)?.[1]);
    expect(passt).toBeGreaterThan(0);
    expect(() => process.kill(passt, 0)).toThrow();
    const m = /VP 0 counters (\{.*\})/.exec(stderr);
    expect(m).not.toBeNull();
    const status = JSON.parse(m![1]!) as Record<string, unknown>;
    expect(status.enlightened).toBe(true);
    // Linux's guest OS id: bit 63 (open source), OS type 0x100 (Linux) in 62:56 and 55:48 (hv_generate_guest_id).
    expect(BigInt(status.guestOsId as string) >> 48n).toBe(0x8100n);
    // The hypercall page: enabled, inside RAM, holding the trap `out 0xEA, al; ret`.
    expect(BigInt(status.hypercallMsr as string) & 1n).toBe(1n);
    expect(status.hypercallPage).toMatch(/^e6eac3/);
    expect(status.cpuid as number).toBeGreaterThan(5);
    expect(status.hostPortAccesses as number).toBeGreaterThan(1000);
    const vmbus = status.vmbus as Record<string, number | string>;
    expect(vmbus.version).toBe('5.3');
    // SCSI, NIC, heartbeat, shutdown, time sync and KVP offered; Linux opens SCSI, the NIC and the first three ICs at once.
    expect(vmbus.channelsOpened).toBeGreaterThanOrEqual(5); // with the SCSI controller's and the NIC's
    expect(vmbus.protocolErrors).toBe(0);
    expect(vmbus.heartbeat).toBe(2); // Msvm_HeartbeatComponent OperationalStatus OK
    expect(vmbus.postMessageCalls as number).toBeGreaterThan(5);
    expect(vmbus.signalEventCalls as number).toBeGreaterThan(0);
    expect(vmbus.vectorsRaised as number).toBeGreaterThan(0);
    // Our IDE controller's counters: the firmware and ata_piix reached it, IRQ 14 was raised, nothing faulted.
    const ide = status.ide as Record<string, number>;
    expect(ide.disks).toBe(1);
    expect(ide.portReads + ide.portWrites).toBeGreaterThan(100);
    expect(ide.interrupts).toBeGreaterThan(2);
    expect(ide.sectors).toBeGreaterThan(2);
    expect(ide.faults).toBe(0);
    expect(ide.bmideBase).toBeGreaterThan(0);
  }, 90_000);
});
