// Guest driver for the cascaded 8259A pair of a PC (Intel 8259A datasheet, "Programming the
// 8259A"): initialisation words ICW1–ICW4, the interrupt mask (OCW1) and end of interrupt (OCW2).
// The slave hangs off master IR2 (the PC/AT wiring), so IRQ 8–15 need the cascade line unmasked
// and, in normal EOI mode, an EOI to both chips.
import { outb, inb } from "../platform/hv";

/** I/O ports of the master and slave 8259A (command: ICW1, OCW2, OCW3; data: ICW2–4, OCW1 mask). */
export const PIC_MASTER_COMMAND: u32 = 0x20;
export const PIC_MASTER_DATA: u32 = 0x21;
export const PIC_SLAVE_COMMAND: u32 = 0xa0;
export const PIC_SLAVE_DATA: u32 = 0xa1;

/** ICW1: bit 4 marks an initialisation word, bit 0 "ICW4 needed"; edge triggered, cascade mode. */
const ICW1_INIT: u32 = 0x10;
const ICW1_ICW4: u32 = 0x01;
/** ICW4: bit 0 8086/88 mode, bit 1 automatic EOI. */
const ICW4_8086: u32 = 0x01;
const ICW4_AEOI: u32 = 0x02;
/** OCW2 non-specific EOI. */
const OCW2_EOI: u32 = 0x20;
/** Master IR input the slave's INT is wired to (PC/AT). */
const CASCADE_IRQ: u32 = 2;

// The mask mirror and the EOI mode live in guest memory, not in module globals (which are per
// VP), so every VP and every interrupt handler sees the same PIC.
const MASKS: usize = memory.data(4, 4); // [0] master mask, [1] slave mask, [2] automatic EOI

/**
 * Programs both chips: IRQ 0–7 at vector `masterBase`, IRQ 8–15 at `slaveBase` (bases are
 * multiples of 8, ICW2 bits 2:0 are ignored in 8086 mode), every line masked except the cascade.
 * With `aeoi`, ICW4 selects automatic EOI: the chip ends the interrupt itself at the second INTA,
 * so handlers need no EOI exit (8259A datasheet, "Automatic End of Interrupt mode"; chips dated
 * 1985 or later support it on the slave too).
 */
export function picInit(masterBase: u32, slaveBase: u32, aeoi: bool = false): void {
  store<u8>(MASKS + 2, aeoi ? 1 : 0);
  const icw4 = ICW4_8086 | (aeoi ? ICW4_AEOI : 0);
  outb(PIC_MASTER_COMMAND, ICW1_INIT | ICW1_ICW4);
  outb(PIC_MASTER_DATA, masterBase & 0xf8);
  outb(PIC_MASTER_DATA, 1 << CASCADE_IRQ); // ICW3 master: a slave on IR2
  outb(PIC_MASTER_DATA, icw4);
  outb(PIC_SLAVE_COMMAND, ICW1_INIT | ICW1_ICW4);
  outb(PIC_SLAVE_DATA, slaveBase & 0xf8);
  outb(PIC_SLAVE_DATA, CASCADE_IRQ); // ICW3 slave: its id (the master input it drives)
  outb(PIC_SLAVE_DATA, icw4);
  store<u8>(MASKS, <u8>(0xff & ~(<u32>1 << CASCADE_IRQ)));
  store<u8>(MASKS + 1, 0xff);
  outb(PIC_MASTER_DATA, load<u8>(MASKS));
  outb(PIC_SLAVE_DATA, load<u8>(MASKS + 1));
}

/** True when the chips were programmed for automatic EOI. */
export function picAutoEoi(): bool {
  return load<u8>(MASKS + 2) != 0;
}

/** Lets `irq` (0–15) through: OCW1 clears its mask bit. */
export function picUnmask(irq: u32): void {
  setMask(irq, false);
}

/** Blocks `irq` (0–15): OCW1 sets its mask bit (one port exit). */
export function picMask(irq: u32): void {
  setMask(irq, true);
}

function setMask(irq: u32, masked: bool): void {
  const slave = irq >= 8;
  const at = MASKS + (slave ? 1 : 0);
  const bit: u32 = <u32>1 << (irq & 7);
  const old = <u32>load<u8>(at);
  const m = masked ? old | bit : old & ~bit;
  store<u8>(at, <u8>m);
  outb(slave ? PIC_SLAVE_DATA : PIC_MASTER_DATA, m);
}

/**
 * Ends the interrupt of `irq` (OCW2 non-specific EOI): a slave IRQ clears the slave's ISR bit
 * and then the master's IR2 bit (8259A datasheet, "End of Interrupt": in cascade mode the EOI
 * goes to both). Nothing to do in automatic-EOI mode.
 */
export function picEoi(irq: u32): void {
  if (load<u8>(MASKS + 2) != 0) return;
  if (irq >= 8) outb(PIC_SLAVE_COMMAND, OCW2_EOI);
  outb(PIC_MASTER_COMMAND, OCW2_EOI);
}

/** Interrupt request register of both chips (OCW3 read IRR), IRQ 0 in bit 0. For diagnostics. */
export function picPendingRequests(): u32 {
  outb(PIC_MASTER_COMMAND, 0x0a);
  outb(PIC_SLAVE_COMMAND, 0x0a);
  return inb(PIC_MASTER_COMMAND) | (inb(PIC_SLAVE_COMMAND) << 8);
}
