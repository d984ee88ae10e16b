import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { fnvWords, guestPattern, ioExitsBetween, readSectors, runStorageGuest, tempDisk, writeSectors } from './e2e-emulated-harness.ts';

/**
 * The emulated IDE path end to end: the storage-emulated guest drives the PIIX4 IDE controller
 * through the child SDK's PIC, PCI and ATA drivers, against a real raw file.
 *
 * Exits per 4 KiB read (8 sectors, LBA28) from the VP's counters, against the device-level counts
 * of test/devices/ide-exit-counts.test.ts (PIO per word 2063, string PIO 23, READ MULTIPLE 9,
 * DMA 15). The guest runs the same register sequences; the only addition is the 8259 EOI its
 * interrupt handler sends for each interrupt — IRQ 14 is on the slave, so two OUTs (slave, then
 * master; 8259A datasheet, "End of Interrupt"). With automatic EOI the counts are the device's.
 */
const MODES = [
  { mode: 'word', deviceRead: 2063, interrupts: 8, deviceWrite: 7 + 1 + 8 * 257 },
  { mode: 'string', deviceRead: 23, interrupts: 8, deviceWrite: 7 + 1 + 8 * 2 },
  { mode: 'multiple', deviceRead: 9, interrupts: 1, deviceWrite: 7 + 1 + 1 + 1 },
  { mode: 'dma', deviceRead: 15, interrupts: 1, deviceWrite: 15 },
] as const;
const EOI_EXITS_PER_IRQ14 = 2;

const SECTORS = 8192; // 4 MiB
const WLBA = 64,
  WSECTORS = 64,
  HLBA = 1024,
  HSECTORS = 16;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function disk(): string {
  const { dir, file } = tempDisk(SECTORS);
  dirs.push(dir);
  return file;
}

describe.each(MODES)('emulated IDE, $mode', ({ mode, deviceRead, interrupts, deviceWrite }) => {
  it("writes byte-identical data to the file, reads the host's data, and costs the protocol's exits", async () => {
    const file = disk();
    const host = randomBytes(HSECTORS * 512);
    writeSectors(file, HLBA, host);
    const seed = 0x1000 + deviceRead;
    const run = await runStorageGuest(`mode=${mode} seed=${seed} wlba=${WLBA} wsectors=${WSECTORS} hlba=${HLBA} hsectors=${HSECTORS}`, [file]);
    const v = run.values;
    expect(v.attach_status, run.console).toBe(0);
    expect(v.pci_ide_found).toBe(1);
    expect(v.bm_base).toBe(0xc000);
    expect(v.sectors).toBe(SECTORS);
    expect(v.multiple).toBe(mode === 'multiple' ? 128 : 0);

    // Guest → file: the bytes the guest wrote are in the file, byte for byte.
    expect(v.write_status).toBe(0);
    expect(v.flush_status).toBe(0);
    const expected = guestPattern(seed, WLBA, WSECTORS);
    expect(readSectors(file, WLBA, WSECTORS).equals(expected)).toBe(true);
    expect(v.pattern_checksum).toBe(fnvWords(expected));
    expect(v.read_status).toBe(0);
    expect(v.readback_ok).toBe(1);
    // Nothing around the written range was touched.
    expect(readSectors(file, WLBA - 1, 1).equals(Buffer.alloc(512))).toBe(true);
    expect(readSectors(file, WLBA + WSECTORS, 1).equals(Buffer.alloc(512))).toBe(true);

    // File → guest: the host's random bytes read back in the guest.
    expect(v.host_read_status).toBe(0);
    expect(v.host_checksum).toBe(fnvWords(host));
    expect(readSectors(file, HLBA, HSECTORS).equals(host)).toBe(true); // the 4 KiB write put back what it read

    // Exits per 4 KiB: the VP's counters agree with the driver's own count and with the device's.
    const read = ioExitsBetween(run, 1, 2);
    const write = ioExitsBetween(run, 2, 3);
    expect(v.read4k_status).toBe(0);
    expect(v.write4k_status).toBe(0);
    expect(read.io).toBe(deviceRead + EOI_EXITS_PER_IRQ14 * interrupts);
    expect(write.io).toBe(deviceWrite + EOI_EXITS_PER_IRQ14 * interrupts);
    expect(v.read4k_driver_exits).toBe(read.io);
    expect(v.write4k_driver_exits).toBe(write.io);
    expect(read.interrupts).toBe(interrupts);
    expect(v.read4k_interrupts).toBe(interrupts);
    expect(write.interrupts).toBe(interrupts);
    // Each command completes inside the OUT that starts it, so the interrupt is already taken when
    // the driver would wait: no halts.
    expect(read.halts).toBe(0);

    // Hostile requests: the drive answers with an error status and keeps serving.
    expect(v.past_end_read_status).toBe(-2); // IDNF → BLOCK_OUT_OF_RANGE
    expect(v.past_end_read_error).toBe(0x10);
    expect(v.straddle_read_status).toBe(-2);
    expect(v.past_end_write_status).toBe(-2);
    expect(v.past_end_write_error).toBe(0x10);
    expect(v.after_hostile_status).toBe(0);
    expect(v.after_hostile_ok).toBe(1);
    expect(v.done).toBe(1);
    expect(run.exit).toEqual({ reason: 'halted' });
    expect(run.platform.chipset.ide.channels[0].busMaster?.started ?? false).toBe(false);
  });
});

describe('emulated IDE with automatic EOI', () => {
  it.each(MODES)('$mode: a 4 KiB read costs exactly the device-level exits', async ({ mode, deviceRead, interrupts }) => {
    const file = disk();
    const run = await runStorageGuest(`mode=${mode} aeoi`, [file]);
    expect(run.values.readback_ok, run.console).toBe(1);
    const read = ioExitsBetween(run, 1, 2);
    expect(read.io).toBe(deviceRead);
    expect(read.interrupts).toBe(interrupts);
  });
});

describe('emulated IDE, 48-bit commands', () => {
  it('READ/WRITE DMA EXT and READ/WRITE MULTIPLE EXT move the same bytes; the previous (HOB) bytes of features, count and LBA cost 5 exits', async () => {
    for (const [mode, device] of [
      ['dma', 15],
      ['multiple', 9],
    ] as const) {
      const file = disk();
      const run = await runStorageGuest(`mode=${mode} lba48 aeoi seed=77`, [file]);
      expect(run.values.lba48, run.console).toBe(1);
      expect(run.values.readback_ok).toBe(1);
      expect(readSectors(file, WLBA, WSECTORS).equals(guestPattern(77, WLBA, WSECTORS))).toBe(true);
      expect(ioExitsBetween(run, 1, 2).io).toBe(device + 5);
      expect(run.values.past_end_read_status).toBe(-2);
    }
  });
});

describe('emulated IDE, hostile PRD tables', () => {
  it('a PRD table without an end (every entry the same 2 bytes) and one outside RAM end in BM Error; the VM keeps running', async () => {
    const file = disk();
    const run = await runStorageGuest('mode=dma seed=5', [file]);
    const v = run.values;
    expect(v.prd_loop_status, run.console).toBe(-1); // BLOCK_IO_ERROR
    expect(v.prd_loop_bm_status & 0x02).toBe(0x02); // BM Error
    expect(v.prd_loop_bm_status & 0x04).toBe(0x04); // BM Interrupt
    expect(v.prd_outside_status).toBe(-1);
    expect(v.prd_outside_bm_status & 0x02).toBe(0x02);
    // The refused transfers moved nothing; the next good read sees the data.
    expect(v.after_hostile_ok).toBe(1);
    expect(readSectors(file, WLBA, WSECTORS).equals(guestPattern(5, WLBA, WSECTORS))).toBe(true);
    expect(run.exit).toEqual({ reason: 'halted' });
  });
});

describe('emulated IDE, drive positions', () => {
  it('disk=3 reaches the secondary slave (ports 0x170, IRQ 15) and only that file', async () => {
    const files = [disk(), disk(), disk(), disk()];
    const run = await runStorageGuest('mode=dma disk=3 seed=9', files);
    expect(run.values.readback_ok, run.console).toBe(1);
    expect(readSectors(files[3]!, WLBA, WSECTORS).equals(guestPattern(9, WLBA, WSECTORS))).toBe(true);
    for (const f of files.slice(0, 3)) expect(readSectors(f, WLBA, WSECTORS).equals(Buffer.alloc(WSECTORS * 512))).toBe(true);
    expect(run.platform.chipset.ide.channels[1].interruptsRaised).toBeGreaterThan(0);
    expect(run.platform.chipset.ide.channels[0].interruptsRaised).toBe(0);
    // The guest's PIC driver: vector bases 0x20/0x28, only the cascade (IR2) and IRQ 15 unmasked,
    // nothing left in service (every interrupt got its EOI).
    const pic = run.platform.pic;
    expect([pic.master.vectorBase, pic.slave.vectorBase]).toEqual([0x20, 0x28]);
    expect([pic.master.imr, pic.slave.imr]).toEqual([0xfb, 0x7f]);
    expect([pic.master.isr, pic.slave.isr]).toEqual([0, 0]);
    // The guest's PCI driver switched on I/O decode and bus mastering of 00:07.1.
    expect(run.platform.chipset.ide.config.command & 0x5).toBe(0x5);
  });

  it('an empty position: attach reports BLOCK_NOT_READY', async () => {
    const run = await runStorageGuest('mode=string disk=1', [disk()]);
    expect(run.values.attach_status, run.console).toBe(-5);
    expect(run.exit).toEqual({ reason: 'halted' });
  });
});

describe('emulated IDE beyond 28-bit addressing', () => {
  // A sparse image just over 128 GiB: LBA 2^28 exists only for 48-bit commands.
  const LBA28_END = 2 ** 28;
  it.each(['string', 'multiple', 'dma'])('%s: a write across LBA 2^28 switches to the EXT commands and lands at the right offset', async (mode) => {
    const { dir, file } = tempDisk(LBA28_END + 4096);
    dirs.push(dir);
    const wlba = LBA28_END - 32;
    const run = await runStorageGuest(`mode=${mode} seed=91 wlba=${wlba} wsectors=64`, [file]);
    const v = run.values;
    expect(v.sectors, run.console).toBe(LBA28_END + 4096); // IDENTIFY words 100–103, not 60–61
    expect(v.lba48).toBe(1);
    expect(v.write_status).toBe(0);
    expect(v.readback_ok).toBe(1);
    expect(readSectors(file, wlba, 64).equals(guestPattern(91, wlba, 64))).toBe(true);
    expect(v.past_end_read_status).toBe(-2);
    // The measured read at LBA 1024 still uses a 28-bit command.
    expect(ioExitsBetween(run, 1, 2).io).toBe(MODES.find((m) => m.mode === mode)!.deviceRead + EOI_EXITS_PER_IRQ14 * (mode === 'string' ? 8 : 1));
  });
});

describe('emulated IDE, 128 KiB requests', () => {
  it.each(['string', 'multiple', 'dma'])('%s: 256 sectors in one command (PRD split at 64 KiB boundaries, two MULTIPLE blocks)', async (mode) => {
    const file = disk();
    const run = await runStorageGuest(`mode=${mode} seed=17 wlba=300 wsectors=256`, [file]);
    expect(run.values.write_status, run.console).toBe(0);
    expect(run.values.readback_ok).toBe(1);
    expect(readSectors(file, 300, 256).equals(guestPattern(17, 300, 256))).toBe(true);
  });
});
