// The unenlightened reference guest: a PC operating system in miniature that never looks for
// the hypervisor. It programs the 8259 pair, finds the PIIX4 IDE function on PCI, attaches every
// ATA disk it finds, takes COM1's receive interrupt on IRQ 4, and runs the serial-console shell
// (child-sdk/kernel/shell.ts) until `shutdown` or `halt`.
//
// Command line:
//   mode=dma|string|multiple|word   ATA transfer method (default dma: bus mastering)
//   echo                            echo typed characters (for a terminal in raw mode)
import { sti } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineHas } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { shellRun } from "../../kernel/shell";
import { lineSetEcho } from "../../kernel/shell-line";
import { picInit } from "../../drivers/pic8259";
import { pciFind, piix4BusMasterBase, INTEL_VENDOR, PIIX4_IDE_DEVICE } from "../../drivers/pci-config";
import { ATA_DMA, ATA_PIO_MULTIPLE, ATA_PIO_STRING, ATA_PIO_WORD } from "../../drivers/ata-disk";
import { BLOCK_NOT_READY, BLOCK_OK } from "../../drivers/block-device";
import { uartInit } from "../../drivers/uart16550";
import { EmulatedMachine, IDE_POSITIONS } from "./machine";
import { Ne2000, REALTEK_VENDOR, RTL8029_DEVICE } from "../../drivers/ne2000";
import { netAttach } from "../../net/ipv4-stack";

const MASTER_VECTOR_BASE: u32 = 0x20;
const SLAVE_VECTOR_BASE: u32 = 0x28;
const COM1_PORT: u32 = 0x3f8;
const COM1_IRQ: u32 = 4;

function modeFromCmdline(): u32 {
  if (cmdlineHas("mode=string")) return ATA_PIO_STRING;
  if (cmdlineHas("mode=multiple")) return ATA_PIO_MULTIPLE;
  if (cmdlineHas("mode=word")) return ATA_PIO_WORD;
  return ATA_DMA;
}

function main(): i32 {
  const m = new EmulatedMachine();
  picInit(MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE);
  uartInit(COM1_PORT, COM1_IRQ, MASTER_VECTOR_BASE + COM1_IRQ);
  lineSetEcho(cmdlineHas("echo"));
  sti();
  puts("tsvisor reference guest (emulated devices only)\n");
  m.ide = pciFind(INTEL_VENDOR, PIIX4_IDE_DEVICE);
  m.bmBase = piix4BusMasterBase(m.ide);
  m.mode = modeFromCmdline();
  if (m.ide < 0) puts("no PIIX4 IDE function on PCI bus 0: no disks\n");
  for (let p: u32 = 0; m.ide >= 0 && p < IDE_POSITIONS; p++) {
    const status = m.attach(p, m.mode, SLAVE_VECTOR_BASE);
    // An empty position is normal; anything else is worth a line.
    if (status != BLOCK_OK && status != BLOCK_NOT_READY) {
      puts("ide position ");
      putDec(p);
      puts(": attach failed (");
      putDec(<u64>(-status));
      puts(")\n");
    }
  }
  const nicFn = pciFind(REALTEK_VENDOR, RTL8029_DEVICE);
  if (nicFn >= 0) {
    const nic = new Ne2000();
    if (nic.attach(nicFn, MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE)) {
      netAttach(nic);
      puts("network: ");
      nic.describe();
      puts("; set an address with ip <a.b.c.d>/<prefix>\n");
    } else puts("network: the NE2000 did not answer\n");
  }
  putDec(m.diskCount());
  puts(m.diskCount() == 1 ? " disk attached; type help\n" : " disks attached; type help\n");
  shellRun(m);
  m.powerOff();
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
