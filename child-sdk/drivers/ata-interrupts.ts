// Interrupt side of the ATA driver: one record per IDE channel in guest memory (module globals are
// per VP and an interrupt handler cannot capture), the IRQ 14/15 handlers, and the count of port
// accesses the driver made — each one is an exit, so the driver can say what an I/O cost.
//
// Port exits counted here include the PIC EOIs the handlers send.
//
// Completion protocol (ATA/ATAPI-6, PIO data-in/data-out and DMA protocols): INTRQ rises when a
// DRQ block is ready, when a command ends, or on error; the host acknowledges it by reading the
// Status register. For DMA (SFF-8038i, "Standard Programming Sequence") the handler first reads
// the bus-master status, clears Start, then reads the drive status and writes the BM status back
// to clear Interrupt/Error (write-1-to-clear).
import { inb, outb, halt } from "../platform/hv";
import { setInterruptHandler } from "../kernel/interrupts";
import { picAutoEoi, picEoi, picUnmask } from "./pic8259";
import { BM_COMMAND, BM_STATUS, BM_ST_INTERRUPT, REG_STATUS_COMMAND } from "./ata-registers";

// Channel record layout (u32 fields).
const C_PENDING: usize = 0; // an interrupt arrived that the main line has not consumed
const C_STATUS: usize = 4; // drive Status read by the handler
const C_BM_STATUS: usize = 8; // bus-master status read by the handler (DMA only)
const C_DMA_ARMED: usize = 12; // BM command value while a DMA command is in flight, else 0
const C_COMMAND_BASE: usize = 16;
const C_BM_BASE: usize = 20;
const C_IRQ: usize = 24;
const C_INTERRUPTS: usize = 28; // interrupts taken, ever
const C_NOT_OURS: usize = 32; // DMA-armed interrupts without BM Interrupt set (a shared line)
const C_BYTES: usize = 64;

const CHANNELS: usize = memory.data(2 * 64, 16);
const PORT_ACCESSES: usize = memory.data(8, 8); // u32: port exits made by the ATA driver

/** Address of IDE channel `ch`'s record (0 primary, 1 secondary) in shared guest memory. */
// @ts-ignore: decorator
@inline export function channelRecord(ch: u32): usize {
  return CHANNELS + <usize>ch * C_BYTES;
}

/** Port exits the ATA driver has made so far (main line and interrupt handlers). */
export function ataPortAccesses(): u32 {
  return load<u32>(PORT_ACCESSES);
}

/** inb(port), counted as one ATA driver port exit. */
// @ts-ignore: decorator
@inline export function ataIn8(port: u32): u32 {
  store<u32>(PORT_ACCESSES, load<u32>(PORT_ACCESSES) + 1);
  return inb(port);
}

/** outb(port, value), counted as one ATA driver port exit. */
// @ts-ignore: decorator
@inline export function ataOut8(port: u32, value: u32): void {
  store<u32>(PORT_ACCESSES, load<u32>(PORT_ACCESSES) + 1);
  outb(port, value);
}

/** Counts `n` port exits made through another import (string I/O, 16/32-bit access). */
// @ts-ignore: decorator
@inline export function ataCountAccesses(n: u32): void {
  store<u32>(PORT_ACCESSES, load<u32>(PORT_ACCESSES) + n);
}

/** EOI to the PIC, counted with the driver's exits (two for a slave IRQ, none with automatic EOI). */
function endOfInterrupt(irq: u32): void {
  picEoi(irq);
  if (!picAutoEoi()) ataCountAccesses(irq >= 8 ? 2 : 1);
}

function service(ch: u32): void {
  const rec = channelRecord(ch);
  const base = load<u32>(rec + C_COMMAND_BASE);
  const armed = load<u32>(rec + C_DMA_ARMED);
  if (armed != 0) {
    const bm = load<u32>(rec + C_BM_BASE);
    const bmStatus = ataIn8(bm + BM_STATUS);
    if ((bmStatus & BM_ST_INTERRUPT) == 0) {
      // Not this channel's transfer ending: leave the drive's INTRQ alone.
      store<u32>(rec + C_NOT_OURS, load<u32>(rec + C_NOT_OURS) + 1);
      endOfInterrupt(load<u32>(rec + C_IRQ));
      return;
    }
    ataOut8(bm + BM_COMMAND, armed & ~1); // clear Start, keep the direction
    store<u32>(rec + C_STATUS, ataIn8(base + REG_STATUS_COMMAND));
    ataOut8(bm + BM_STATUS, bmStatus); // write-1-to-clear Interrupt and Error; capable bits kept
    store<u32>(rec + C_BM_STATUS, bmStatus);
    store<u32>(rec + C_DMA_ARMED, 0);
  } else {
    store<u32>(rec + C_STATUS, ataIn8(base + REG_STATUS_COMMAND));
  }
  store<u32>(rec + C_PENDING, 1);
  store<u32>(rec + C_INTERRUPTS, load<u32>(rec + C_INTERRUPTS) + 1);
  endOfInterrupt(load<u32>(rec + C_IRQ));
}

function primaryInterrupt(_vector: u32): void {
  service(0);
}

function secondaryInterrupt(_vector: u32): void {
  service(1);
}

/**
 * Records a channel's ports and installs its handler at `vector` (the vector the PIC was
 * programmed to give its IRQ), then unmasks the IRQ.
 */
export function ataChannelInit(ch: u32, commandBase: u32, bmBase: u32, irq: u32, vector: u32): void {
  const rec = channelRecord(ch);
  memory.fill(rec, 0, C_BYTES);
  store<u32>(rec + C_COMMAND_BASE, commandBase);
  store<u32>(rec + C_BM_BASE, bmBase);
  store<u32>(rec + C_IRQ, irq);
  setInterruptHandler(vector, ch == 0 ? primaryInterrupt : secondaryInterrupt);
  picUnmask(irq);
}

/** Forget any interrupt not yet consumed: call before issuing a command. */
export function ataExpectInterrupt(ch: u32, dmaCommand: u32): void {
  const rec = channelRecord(ch);
  store<u32>(rec + C_PENDING, 0);
  store<u32>(rec + C_DMA_ARMED, dmaCommand);
}

/** True when an interrupt has been taken since the last ataExpectInterrupt or wait. */
export function ataInterruptPending(ch: u32): bool {
  return load<u32>(channelRecord(ch) + C_PENDING) != 0;
}

/**
 * Halts until the channel's interrupt has been taken, then returns the Status the handler read.
 * Interrupts are delivered at exit boundaries, so an INTRQ raised inside the OUT that started the
 * command has already been handled when this is reached and no halt is needed.
 */
export function ataWaitInterrupt(ch: u32): u32 {
  const rec = channelRecord(ch);
  while (load<u32>(rec + C_PENDING) == 0) halt();
  store<u32>(rec + C_PENDING, 0);
  return load<u32>(rec + C_STATUS);
}

/** Bus-master status the interrupt handler read at the end of the channel's last DMA command. */
export function ataLastBmStatus(ch: u32): u32 {
  return load<u32>(channelRecord(ch) + C_BM_STATUS);
}

/** Interrupts channel `ch`'s handler has serviced since ataChannelInit (not counting ones for another channel's DMA). */
export function ataInterruptsTaken(ch: u32): u32 {
  return load<u32>(channelRecord(ch) + C_INTERRUPTS);
}
