/**
 * The unenlightened reference guest on the emulated platform with real raw disks: commands typed
 * into COM1's receiver, answers read from COM1's transmitter, bytes checked in the host files.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ShellRig, readSector, tempDisk, writeSector } from './shell-rig.ts';

const SECTORS = 16384; // 8 MiB
let rig: ShellRig | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await rig?.dispose();
  rig = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function disk(): string {
  const { dir, file } = tempDisk(SECTORS);
  dirs.push(dir);
  return file;
}

describe('ref-emulated: the serial-console shell on PIC, PCI, ATA and COM1', () => {
  it('lists its disks, writes a sector the host file then holds, reads it back as a hex dump', async () => {
    const file = disk();
    rig = await ShellRig.boot({ image: 'ref-emulated', ide: [file] });
    await rig.ready();
    expect(rig.console()).toContain('1 disk attached');

    const devices = await rig.command('devices');
    expect(devices).toContain('disk 0: ide primary master (ATA, bus-master DMA, LBA48), 16384 sectors (8 MiB)');
    expect(devices).toContain('PIIX4 IDE (8086:7111)');

    const wrote = await rig.command('write 0 100 hello from the guest');
    expect(wrote).toBe('disk 0 lba 100: wrote 20 bytes (one sector, zero-padded) and flushed\n');
    const expected = Buffer.alloc(512);
    expected.write('hello from the guest', 'latin1');
    expect(readSector(file, 100)).toEqual(expected);

    const read = await rig.command('read 0 100');
    expect(read).toContain('disk 0 lba 100, 1 sector:\n');
    expect(read).toContain('00000000  68 65 6c 6c 6f 20 66 72  6f 6d 20 74 68 65 20 67  |hello from the g|\n');
    // hexdump -C layout: lines equal to the one before collapse into "*", then the end offset.
    expect(
      read.endsWith(
        [
          '00000010  75 65 73 74 00 00 00 00  00 00 00 00 00 00 00 00  |uest............|',
          '00000020  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|',
          '*',
          '00000200',
          '',
        ].join('\n'),
      ),
    ).toBe(true);
  });

  it('reads what the host put in the file, in PIO mode too, across two sectors', async () => {
    const file = disk();
    writeSector(file, 7, Buffer.from('host data at lba 7'));
    writeSector(file, 8, Buffer.from('and at lba 8'));
    rig = await ShellRig.boot({ image: 'ref-emulated', ide: [file], cmdline: 'mode=string' });
    await rig.ready();
    expect(await rig.command('devices')).toContain('PIO string');
    const read = await rig.command('read 0 0x7 2');
    expect(read).toContain('|host data at lba|');
    expect(read).toContain('00000200  61 6e 64 20 61 74 20 6c  62 61 20 38 00 00 00 00  |and at lba 8....|');
  });

  it('answers unknown commands and bad numbers with one error line and keeps serving', async () => {
    rig = await ShellRig.boot({ image: 'ref-emulated', ide: [disk()] });
    await rig.ready();
    expect(await rig.command('frobnicate now')).toBe("error: unknown command 'frobnicate' (try help)\n");
    expect(await rig.command('read 0 12x')).toBe("error: lba '12x' is not a number\n");
    expect(await rig.command('read 0 99999999')).toBe("error: lba '99999999' is past the end of the disk\n");
    expect(await rig.command('read 3 0')).toBe("error: no disk '3' (see devices)\n");
    expect(await rig.command('read 0 0 9')).toBe("error: count '9' must be 1..8\n");
    expect(await rig.command('read 0 0 99999999999999999999999')).toBe("error: count '99999999999999999999999' is not a number\n");
    expect(await rig.command('write 0 5')).toBe('error: usage: write <disk> <lba> <text>\n');
    expect(await rig.command('read')).toBe('error: usage: read <disk> <lba> [count]\n');
    expect(await rig.command('x'.repeat(300))).toBe('error: line too long (the limit is 240 characters)\n');
    expect(await rig.command('')).toBe('');
    // Erased characters do not reach the command; LF alone ends a line too.
    expect(await rig.command('echX\x7fo  two  spaces ', '\n')).toBe(' two  spaces \n');
    const help = await rig.command('help');
    for (const c of ['devices', 'read <disk> <lba> [count]', 'write <disk> <lba> <text>', 'counters', 'echo <text>', 'uptime', 'shutdown, halt'])
      expect(help).toContain(c);
    expect(await rig.command('uptime')).toMatch(/^uptime: unknown: .*no PIT or RTC/);
    const counters = await rig.command('counters');
    expect(counters).toMatch(/shell: commands=\d+ errors=9 reads=0 writes=0/);
    expect(counters).toMatch(/com1: interrupts=[1-9]\d* bytes_received=[1-9]/);
    // IDENTIFY DEVICE and SET FEATURES (DMA mode) at attach, kept though probing the slave reset the driver's count.
    expect(counters).toMatch(/ide: interrupts primary=2 secondary=0 /);
  });

  it('counts the I/O it did, and halts the VP on shutdown', async () => {
    rig = await ShellRig.boot({ image: 'ref-emulated', ide: [disk()] });
    await rig.ready();
    await rig.command('write 0 1 a');
    await rig.command('read 0 1 4');
    const counters = await rig.command('counters');
    expect(counters).toMatch(/reads=1 writes=1 flushes=1 sectors_read=4 sectors_written=1 io_failures=0/);
    // DMA: one interrupt per command (write, flush, read) at least.
    expect(counters).toMatch(/ide: interrupts primary=([3-9]|\d\d+) /);
    const before = rig.console().length;
    rig.type('shutdown\r');
    await rig.waitForHalt();
    expect(rig.console().slice(before)).toBe('halting\n');
    expect(rig.partition.vpExit(0)).toEqual({ reason: 'halted' });
  });

  it('numbers two disks on one channel in IDE order and writes each to its own file', async () => {
    const master = disk(),
      slave = disk();
    rig = await ShellRig.boot({ image: 'ref-emulated', ide: [master, slave] });
    await rig.ready();
    const devices = await rig.command('devices');
    expect(devices).toContain('disk 0: ide primary master');
    expect(devices).toContain('disk 1: ide primary slave');
    await rig.command('write 1 2 on the slave');
    await rig.command('write 0 2 on the master');
    expect(readSector(slave, 2).toString('latin1', 0, 12)).toBe('on the slave');
    expect(readSector(master, 2).toString('latin1', 0, 13)).toBe('on the master');
    expect(await rig.command('read 1 2')).toContain('|on the slave....|');
  });

  it('keeps what was typed before the driver took the UART', async () => {
    rig = await ShellRig.boot({ image: 'ref-emulated', ide: [disk()] });
    rig.type('echo typed ahead\r');
    await rig.waitFor((o) => o.includes('typed ahead\ntsvisor> '), 'the early command');
    expect(rig.console()).toContain('1 disk attached; type help\ntsvisor> typed ahead\ntsvisor> ');
  });

  it('boots with no disks and says so', async () => {
    rig = await ShellRig.boot({ image: 'ref-emulated' });
    await rig.ready();
    expect(rig.console()).toContain('0 disks attached');
    expect(await rig.command('devices')).toContain('disks: none\n');
    expect(await rig.command('read 0 0')).toBe("error: no disk '0' (see devices)\n");
    rig.type('halt\n');
    await rig.waitForHalt();
  });
});
