// Guest driver for the console UART, a 16550A on COM1 (OpenVMM serial_16550 spec.rs;
// NS PC16550D datasheet): 115200 8N1, FIFOs on with a receive trigger of one byte, and the
// received-data interrupt on IRQ 4 through the 8259 (MCR.OUT2 gates the IRQ line on a PC). The
// interrupt handler drains the receive FIFO into a ring in guest memory; the main line takes
// bytes from the ring. Transmission waits for THR empty and then sends up to one FIFO's worth
// (16 bytes) per string-I/O exit, as a driver must on hardware whose line is slower than the CPU.
//
// State lives in guest memory (module globals are per VP, handlers cannot capture), and the
// handler allocates nothing. Single consumer: the VP that runs the console (VP 0).
import { inb, outb, outsb } from "../platform/hv";
import { setInterruptHandler } from "../kernel/interrupts";
import { picEoi, picUnmask } from "./pic8259";

// Register offsets from the base port (16550 datasheet, table "Register addresses").
const RBR_THR: u32 = 0; // DLL while LCR.DLAB
const IER: u32 = 1; // DLM while LCR.DLAB
const IIR_FCR: u32 = 2;
const LCR: u32 = 3;
const MCR: u32 = 4;
const LSR: u32 = 5;
const MSR: u32 = 6;

const IER_RDA: u32 = 0x01; // received data available (and, with FIFOs, the character timeout)
const IER_RLS: u32 = 0x04; // receiver line status: overrun, parity, framing, break
const IIR_NO_INTERRUPT: u32 = 0x01;
const FCR_ENABLE: u32 = 0x01;
const FCR_CLEAR_TX: u32 = 0x04;
const LCR_8N1: u32 = 0x03;
const LCR_DLAB: u32 = 0x80;
const MCR_DTR: u32 = 0x01;
const MCR_RTS: u32 = 0x02;
const MCR_OUT2: u32 = 0x08;
const LSR_DR: u32 = 0x01;
const LSR_ERRORS: u32 = 0x1e; // OE, PE, FE, BI
const LSR_THRE: u32 = 0x20;

/** Divisor for 115200 baud: the 1.8432 MHz clock / 16 / 115200. */
const DIVISOR_115200: u32 = 1;
/** Transmit FIFO depth of a 16550A: the most uartTransmit sends per string-I/O exit. */
export const UART_FIFO_BYTES: u32 = 16;
/** Bytes the receive ring holds; input beyond it while the main line is busy is dropped (counted). */
export const UART_RX_RING_BYTES: u32 = 1024;
/** LSR polls before a transmit gives up on THR empty (a stuck line must not hang the guest). */
const THRE_POLLS: u32 = 100000;
/** Bytes one interrupt drains at most, so a flood of input cannot keep the VP in the handler. */
const DRAIN_LIMIT: u32 = 4096;

// Driver record: [0] base port, [4] IRQ, [8] ring head (next to write, handler),
// [12] ring tail (next to read, main line), [16] interrupts taken, [20] bytes received,
// [24] bytes dropped (ring full), [28] line errors (LSR OE/PE/FE/BI seen), [32] interrupts that
// found nothing pending (IIR bit 0 set), [36] bytes transmitted, [64..] the ring.
const REC: usize = memory.data(64 + 1024, 16);
const R_BASE: usize = 0;
const R_IRQ: usize = 4;
const R_HEAD: usize = 8;
const R_TAIL: usize = 12;
const R_INTERRUPTS: usize = 16;
const R_RECEIVED: usize = 20;
const R_DROPPED: usize = 24;
const R_LINE_ERRORS: usize = 28;
const R_SPURIOUS: usize = 32;
const R_TRANSMITTED: usize = 36;
const RING: usize = REC + 64;

// @ts-ignore: decorator
@inline function bump(field: usize, n: u32 = 1): void {
  store<u32>(REC + field, load<u32>(REC + field) + n);
}

/** Puts a received byte in the ring, or counts it dropped when the ring is full. */
function keep(byte: u8): void {
  const head = load<u32>(REC + R_HEAD);
  if (head - load<u32>(REC + R_TAIL) >= UART_RX_RING_BYTES) {
    bump(R_DROPPED);
    return;
  }
  store<u8>(RING + (head & (UART_RX_RING_BYTES - 1)), byte);
  store<u32>(REC + R_HEAD, head + 1);
  bump(R_RECEIVED);
}

function receiveInterrupt(_vector: u32): void {
  const base = load<u32>(REC + R_BASE);
  bump(R_INTERRUPTS);
  // IIR bit 0 set: nothing pending on this UART (the request was withdrawn before the INTA).
  if ((inb(base + IIR_FCR) & IIR_NO_INTERRUPT) != 0) bump(R_SPURIOUS);
  // Reading LSR also clears a line-status interrupt; reading RBR refills the FIFO from the line.
  for (let n: u32 = 0; n < DRAIN_LIMIT; n++) {
    const lsr = inb(base + LSR);
    if ((lsr & LSR_ERRORS) != 0) bump(R_LINE_ERRORS);
    if ((lsr & LSR_DR) == 0) break;
    keep(<u8>inb(base + RBR_THR));
  }
  picEoi(load<u32>(REC + R_IRQ));
}

/**
 * Programs the UART at `base` (0x3F8 for COM1) and takes its receive interrupt on `irq` (4) at
 * `vector` (the vector the PIC was programmed to give that IRQ). Call after picInit, with
 * interrupts disabled.
 */
export function uartInit(base: u32, irq: u32, vector: u32): void {
  memory.fill(REC, 0, 64);
  store<u32>(REC + R_BASE, base);
  store<u32>(REC + R_IRQ, irq);
  outb(base + IER, 0); // quiet while programming
  outb(base + LCR, LCR_DLAB);
  outb(base + RBR_THR, DIVISOR_115200 & 0xff);
  outb(base + IER, DIVISOR_115200 >> 8);
  outb(base + LCR, LCR_8N1);
  // Keep what was typed before boot: enabling the FIFOs empties the receiver (16550 datasheet,
  // FCR bit 0), so take the waiting byte first; the rest of the input follows through the FIFO.
  for (let n: u32 = 0; n < DRAIN_LIMIT && (inb(base + LSR) & LSR_DR) != 0; n++) keep(<u8>inb(base + RBR_THR));
  outb(base + IIR_FCR, FCR_ENABLE | FCR_CLEAR_TX); // receive trigger level 1 (bits 7:6 = 0)
  outb(base + MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
  // Clear what was latched before we owned the port: line status, modem deltas.
  inb(base + LSR);
  inb(base + MSR);
  inb(base + IIR_FCR);
  setInterruptHandler(vector, receiveInterrupt);
  outb(base + IER, IER_RDA | IER_RLS);
  picUnmask(irq);
}

/** Bytes received and not yet taken. */
export function uartPending(): u32 {
  return atomic.load<u32>(REC + R_HEAD) - load<u32>(REC + R_TAIL);
}

/** Takes the next received byte, or -1 when none is waiting. */
export function uartReadByte(): i32 {
  const tail = load<u32>(REC + R_TAIL);
  if (atomic.load<u32>(REC + R_HEAD) == tail) return -1;
  const b = <i32>load<u8>(RING + (tail & (UART_RX_RING_BYTES - 1)));
  store<u32>(REC + R_TAIL, tail + 1);
  return b;
}

/**
 * Sends `length` bytes from guest memory: for each FIFO's worth, waits until THR is empty, then
 * writes the chunk in one string-I/O exit. Returns the bytes sent (fewer when the line stuck).
 */
export function uartTransmit(gpa: usize, length: u32): u32 {
  const base = load<u32>(REC + R_BASE);
  let sent: u32 = 0;
  while (sent < length) {
    let polls: u32 = 0;
    while ((inb(base + LSR) & LSR_THRE) == 0) if (++polls == THRE_POLLS) return sent;
    const chunk = min<u32>(length - sent, UART_FIFO_BYTES);
    outsb(base + RBR_THR, gpa + sent, chunk);
    sent += chunk;
    bump(R_TRANSMITTED, chunk);
  }
  return sent;
}

/** UART interrupts taken since uartInit. */
export function uartInterrupts(): u32 { return load<u32>(REC + R_INTERRUPTS); }
/** Bytes the handler put in the receive ring. */
export function uartBytesReceived(): u32 { return load<u32>(REC + R_RECEIVED); }
/** Received bytes dropped because the ring was full. */
export function uartBytesDropped(): u32 { return load<u32>(REC + R_DROPPED); }
/** LSR reads that showed overrun, parity, framing or break. */
export function uartLineErrors(): u32 { return load<u32>(REC + R_LINE_ERRORS); }
/** Interrupts that found IIR saying nothing pending. */
export function uartSpuriousInterrupts(): u32 { return load<u32>(REC + R_SPURIOUS); }
/** Bytes uartTransmit has sent. */
export function uartBytesTransmitted(): u32 { return load<u32>(REC + R_TRANSMITTED); }
