/** The main job's Linux section: what the counters of one dd become, which disk is which, and the table. */
import { describe, expect, it } from 'vitest';
import { devicesFromSysBlock, formatLinuxSection, LINUX_DD_BLOCK, linuxRow, type LinuxSection } from '../../bench/io/linux-section.ts';
import type { X86VpStatus } from '../../root-partition/x86/x86-vm-messages.ts';

function status(over: { ports: number; hypercalls: number; rdmsr: number; ideIrq: number; vectors: number }): X86VpStatus {
  return {
    instructions: 0,
    hostPortAccesses: over.ports,
    enlightened: true,
    cpuid: 0,
    rdmsr: over.rdmsr,
    wrmsr: 0,
    hypercalls: over.hypercalls,
    guestOsId: '0x0',
    hypercallMsr: '0x0',
    hypercallPage: '',
    vmbus: {
      version: '5.3',
      messagesFromGuest: 0,
      channelsOpened: 5,
      protocolErrors: 0,
      heartbeat: 2,
      postMessageCalls: 0,
      signalEventCalls: 0,
      vectorsRaised: over.vectors,
    },
    ide: { disks: 1, portReads: 0, portWrites: 0, interrupts: over.ideIrq, sectors: 0, faults: 0, bmideBase: 0xc020 },
  };
}

describe('bench io: the Linux section', () => {
  it('turns the counters one dd moved into per-I/O figures (one I/O = one 64 KiB dd block), interrupts from the path it measures', () => {
    const before = status({ ports: 1000, hypercalls: 50, rdmsr: 7000, ideIrq: 10, vectors: 40 });
    const after = status({ ports: 1000 + 1280, hypercalls: 50 + 64, rdmsr: 7000 + 256, ideIrq: 10 + 64, vectors: 40 + 32 });
    const bytes = 128 * LINUX_DD_BLOCK;
    const ide = linuxRow({ path: 'ata_piix', op: 'read', device: 'sdb', bytes, seconds: 2 }, before, after);
    expect(ide.mbPerS).toBeCloseTo(bytes / 1e6 / 2, 10);
    expect(ide.perIo).toEqual({ exits: (1280 + 64) / 128, interrupts: 64 / 128, clockReads: 256 / 128 });
    const syn = linuxRow({ path: 'hv_storvsc', op: 'read', device: 'sda', bytes, seconds: 1 }, before, after);
    expect(syn.perIo.interrupts).toBe(32 / 128);
  });

  it('tells the disks apart by where sysfs puts them, whatever order the kernel named them in', () => {
    const listing = [
      'total 0',
      'lrwxrwxrwx    1 0        0                0 Dec  6 21:50 sda -> ../devices/LNXSYSTM:00/LNXSYBUS:00/VMBUS:00/5e3b2a10-4c6d-4f8e-9a1b-2c3d4e5f6a7b/host0/target0:0:0/0:0:0:0/block/sda',
      'lrwxrwxrwx    1 0        0                0 Dec  6 21:57 sdb -> ../devices/pci0000:00/0000:00:07.1/ata1/host1/target1:0:0/1:0:0:0/block/sdb',
    ].join('\r\n');
    expect(devicesFromSysBlock(listing)).toEqual({ hv_storvsc: 'sda', ata_piix: 'sdb' });
    expect(devicesFromSysBlock('total 0\r\n')).toEqual({});
  });

  it('prints both paths side by side with the ratio and the data check, or one line saying why it was not measured', () => {
    const row = (path: 'ata_piix' | 'hv_storvsc', op: 'read' | 'write', mbPerS: number) => ({
      path,
      op,
      device: path === 'ata_piix' ? 'sdb' : 'sda',
      bytes: 8 << 20,
      seconds: 1,
      mbPerS,
      perIo: { exits: 10.5, interrupts: 0.5, clockReads: 8 },
    });
    const s: LinuxSection = {
      status: 'measured',
      note: 'one boot',
      bootSeconds: 70,
      rows: [row('ata_piix', 'read', 2), row('hv_storvsc', 'read', 3), row('ata_piix', 'write', 0.8), row('hv_storvsc', 'write', 0.8)],
      integrity: { ok: true, detail: 'both files' },
    };
    const text = formatLinuxSection(s).split('\n');
    expect(text[0]).toBe('Linux: one boot');
    expect(text[1]).toMatch(/^dd\s+path\s+device\s+MiB\s+MB\/s\s+exits\/IO\s+irq\/IO\s+clock reads\/IO$/);
    expect(text[3]).toMatch(/^read\s+ata_piix\s+\/dev\/sdb\s+8\s+2\.00\s+10\.5\s+0\.50\s+8\.00$/);
    expect(text.at(-1)).toBe('hv_storvsc over ata_piix: read 1.50×, write 1.00×; data: OK (both files)');
    expect(formatLinuxSection({ status: 'skipped', note: 'not measured: no guest' })).toBe('Linux: not measured: no guest');
  });
});
