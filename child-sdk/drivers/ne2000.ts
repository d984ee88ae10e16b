// The legacy NIC: an NE2000-compatible card (DP8390 core; PCI RTL8029 10EC:8029), driven the way
// Linux's lib8390.c/ne.c drive it in 16-bit mode (QEMU hw/net/ne2000.c; DP8390 datasheet).
// Frames move through the card's remote DMA with one string I/O exit each (rep outsw / insw);
// everything else is one port exit per register access. Receive interrupts (PRX) only wake the
// guest: frames are taken from the ring by polling in the main loop, never in the handler.
import { inb, inw, insw, outb, outsw } from "../platform/hv";
import { puts, putDec, putHex } from "../kernel/console";
import { setInterruptHandler } from "../kernel/interrupts";
import { NET_MAX_FRAME, NetDevice } from "../net/net-device";
import { picEoi, picUnmask } from "./pic8259";
import { PciFunction, pciRead32, pciWrite32, PCI_COMMAND, PCI_COMMAND_IO } from "./pci-config";

export const REALTEK_VENDOR: u32 = 0x10ec;
export const RTL8029_DEVICE: u32 = 0x8029;

// DP8390 registers (page 0 unless noted) and ASIC ports (Linux 8390.h, ne.c).
const CR: u32 = 0x00;
const PSTART: u32 = 0x01;
const PSTOP: u32 = 0x02;
const BNRY: u32 = 0x03;
const TPSR: u32 = 0x04;
const TBCR0: u32 = 0x05;
const TBCR1: u32 = 0x06;
const ISR: u32 = 0x07;
const CURR: u32 = 0x07; // page 1
const RSAR0: u32 = 0x08;
const RSAR1: u32 = 0x09;
const RBCR0: u32 = 0x0a;
const RBCR1: u32 = 0x0b;
const RCR: u32 = 0x0c;
const TCR: u32 = 0x0d;
const DCR: u32 = 0x0e;
const IMR: u32 = 0x0f;
const DATAPORT: u32 = 0x10;
const RESET: u32 = 0x1f;

const CR_STOP_NODMA: u32 = 0x21;
const CR_START_NODMA: u32 = 0x22;
const CR_PAGE1: u32 = 0x40;
const CR_RREAD: u32 = 0x0a;
const CR_RWRITE: u32 = 0x12;
const CR_TRANSMIT: u32 = 0x26;
const ISR_PRX: u32 = 0x01;
const ISR_PTX: u32 = 0x02;
const ISR_RXE: u32 = 0x04;
const ISR_TXE: u32 = 0x08;
const ISR_OVW: u32 = 0x10;
const ISR_RDC: u32 = 0x40;
const ISR_RST: u32 = 0x80;

// Card memory layout of Linux's NE2000 driver: a 6-page transmit slot at 0x40, the ring 0x46..0x80.
const TX_PAGE: u32 = 0x40;
const RX_START: u32 = 0x46;
const RX_STOP: u32 = 0x80;
const MIN_FRAME: u32 = 60;
/** Exits per wait step (this image has no clock); see waitStep. */
const WAIT_STEP_EXITS: u32 = 6;

// [0] base, [4] irq, [8] interrupts, [12] frames sent, [16] frames received, [20] errors,
// [24] port exits, [28] pending (set by the handler), [32] MAC (6 bytes), [40] header (4 bytes)
const STATE: usize = memory.data(64, 16);
const S_BASE: usize = 0;
const S_IRQ: usize = 4;
const S_INTERRUPTS: usize = 8;
const S_SENT: usize = 12;
const S_RECEIVED: usize = 16;
const S_ERRORS: usize = 20;
const S_EXITS: usize = 24;
const S_PENDING: usize = 28;
const S_MAC: usize = 32;
const S_HEADER: usize = 40;
/** Transmit staging for frames shorter than the 60-byte minimum (the driver pads, as lib8390.c does). */
const PAD: usize = memory.data(64, 16);

function reg(r: u32): u32 { return load<u32>(STATE + S_BASE) + r; }
function exits(n: u32): void { store<u32>(STATE + S_EXITS, load<u32>(STATE + S_EXITS) + n); }
function out(r: u32, v: u32): void { outb(reg(r), v); exits(1); }
function inp(r: u32): u32 { exits(1); return inb(reg(r)); }

function ne2000Interrupt(_vector: u32): void {
  // The main loop may have selected page 1 (to read CURR) when the interrupt came: ISR is
  // offset 7 on page 0 only (on page 1 it is CURR), so switch to page 0 and back, as Linux's
  // ei_interrupt does. The DMA bits are written back unchanged.
  const cr = inp(CR);
  if (cr & 0xc0) out(CR, cr & 0x3f);
  // Acknowledge what woke us (receive, errors); frames stay in the ring for the main loop.
  const isr = inp(ISR);
  out(ISR, isr & (ISR_PRX | ISR_RXE | ISR_OVW | ISR_TXE | ISR_PTX));
  if (cr & 0xc0) out(CR, cr);
  store<u32>(STATE + S_PENDING, 1);
  store<u32>(STATE + S_INTERRUPTS, load<u32>(STATE + S_INTERRUPTS) + 1);
  picEoi(load<u32>(STATE + S_IRQ));
}

/** Remote DMA setup: count and card address, then the read or write command. */
function remote(addr: u32, count: u32, command: u32): void {
  out(RBCR0, count & 0xff);
  out(RBCR1, count >> 8);
  out(RSAR0, addr & 0xff);
  out(RSAR1, addr >> 8);
  out(CR, command);
}

export class Ne2000 extends NetDevice {
  /**
   * Finds the card's window and IRQ from PCI, resets it, reads the station address from the PROM
   * and starts it (Linux lib8390.c NS8390_init). `vectorBase` is the vector of IRQ 0 or 8 as the PIC
   * maps the card's IRQ. False when the card does not answer.
   */
  attach(fn: PciFunction, masterBase: u32, slaveBase: u32): bool {
    const bar = pciRead32(fn, 0x10);
    if ((bar & 1) == 0 || (bar & 0xffe0) == 0) return false;
    const irq = pciRead32(fn, 0x3c) & 0xff;
    if (irq > 15) return false;
    pciWrite32(fn, PCI_COMMAND, (pciRead32(fn, PCI_COMMAND) & 0xffff) | PCI_COMMAND_IO);
    store<u32>(STATE + S_BASE, bar & 0xffe0);
    store<u32>(STATE + S_IRQ, irq);
    // Reset: read then write the reset port, wait for ISR.RST (bounded).
    outb(reg(RESET), inb(reg(RESET)));
    let tries: u32 = 0;
    while ((inp(ISR) & ISR_RST) == 0) if (++tries == 1000) return false;
    out(ISR, 0xff);
    // The PROM, word-wide: each address byte appears twice.
    out(CR, CR_STOP_NODMA);
    out(DCR, 0x49);
    remote(0, 32, CR_RREAD);
    for (let i: u32 = 0; i < 16; i++) {
      const w = inw(reg(DATAPORT));
      exits(1);
      if (i < 6) store<u8>(STATE + S_MAC + i, <u8>(w & 0xff));
    }
    out(ISR, ISR_RDC);
    // NS8390_init (word mode), then start with broadcasts accepted.
    out(CR, CR_STOP_NODMA);
    out(DCR, 0x49);
    out(RBCR0, 0);
    out(RBCR1, 0);
    out(RCR, 0x20);
    out(TCR, 0x02);
    out(TPSR, TX_PAGE);
    out(PSTART, RX_START);
    out(BNRY, RX_STOP - 1);
    out(PSTOP, RX_STOP);
    out(ISR, 0xff);
    out(IMR, 0);
    out(CR, CR_STOP_NODMA | CR_PAGE1);
    for (let i: u32 = 0; i < 6; i++) out(1 + i, load<u8>(STATE + S_MAC + i));
    out(CURR, RX_START);
    out(CR, CR_STOP_NODMA);
    out(ISR, 0xff);
    setInterruptHandler((irq < 8 ? masterBase + irq : slaveBase + irq - 8), ne2000Interrupt);
    picUnmask(irq);
    out(IMR, ISR_PRX | ISR_RXE | ISR_OVW);
    out(CR, CR_START_NODMA);
    out(TCR, 0);
    out(RCR, 0x04);
    return true;
  }

  macByte(i: u32): u8 { return load<u8>(STATE + S_MAC + (i % 6)); }

  /** Transmit (lib8390.c ei_start_xmit): remote write of the frame (one rep outsw), then TBCR/TPSR and the transmit command. */
  send(gpa: usize, length: u32): bool {
    if (length < 14 || length > NET_MAX_FRAME) return false;
    let src = gpa;
    let n = length;
    if (n < MIN_FRAME) {
      memory.fill(PAD, 0, MIN_FRAME);
      memory.copy(PAD, gpa, n);
      src = PAD;
      n = MIN_FRAME;
    }
    const even = (n + 1) & ~1;
    out(ISR, ISR_RDC);
    remote(TX_PAGE << 8, even, CR_RWRITE);
    outsw(reg(DATAPORT), src, even >> 1);
    exits(1);
    if ((inp(ISR) & ISR_RDC) == 0) { this.error(); return false; }
    out(ISR, ISR_RDC);
    out(TBCR0, n & 0xff);
    out(TBCR1, n >> 8);
    out(TPSR, TX_PAGE);
    out(CR, CR_TRANSMIT);
    const isr = inp(ISR);
    out(ISR, ISR_PTX | ISR_TXE);
    if ((isr & ISR_PTX) == 0) { this.error(); return false; }
    store<u32>(STATE + S_SENT, load<u32>(STATE + S_SENT) + 1);
    return true;
  }

  /** Receive (lib8390.c ei_receive): the frame after BNRY if it is not CURR; header, then the frame (one rep insw). */
  receive(gpa: usize): u32 {
    out(CR, CR_START_NODMA | CR_PAGE1);
    const curr = inp(CURR);
    out(CR, CR_START_NODMA);
    let page = inp(BNRY) + 1;
    if (page >= RX_STOP) page = RX_START;
    if (page == curr) return 0;
    remote(page << 8, 4, CR_RREAD);
    insw(reg(DATAPORT), STATE + S_HEADER, 2);
    exits(1);
    out(ISR, ISR_RDC);
    const next = <u32>load<u8>(STATE + S_HEADER + 1);
    const count = <u32>load<u16>(STATE + S_HEADER + 2);
    if (count < MIN_FRAME + 4 || count > NET_MAX_FRAME + 4 || next < RX_START || next >= RX_STOP) {
      // A corrupt header: drop everything in the ring (Linux resets the card here).
      this.error();
      out(BNRY, curr == RX_START ? RX_STOP - 1 : curr - 1);
      return 0;
    }
    const length = count - 4;
    remote((page << 8) + 4, length, CR_RREAD);
    insw(reg(DATAPORT), gpa, (length + 1) >> 1);
    exits(1);
    out(ISR, ISR_RDC);
    out(BNRY, next == RX_START ? RX_STOP - 1 : next - 1);
    store<u32>(STATE + S_RECEIVED, load<u32>(STATE + S_RECEIVED) + 1);
    return length;
  }

  waitStep(): bool {
    if (ne2000TakePending()) return true;
    // This image has no clock, so a step is counted in exits, and an exit costs 1.4 µs on an idle
    // host but 25 µs or more on a loaded one. Six per step make a ping's 20,000 steps about 170 ms
    // on an idle host, several times the round trip between two VMs there (30-60 ms: a busy device
    // thread reads its NIC's socket between 10 ms serving slices), and a few seconds on a loaded
    // one. A wait that ends early costs the same exits either way.
    for (let i: u32 = 0; i < WAIT_STEP_EXITS; i++) {
      inp(ISR); // an exit: the card's interrupt, if raised, is delivered on its return
      if (ne2000TakePending()) return true;
    }
    return false;
  }

  describe(): void {
    puts("ne2000 (RTL8029) at 0x");
    putHex(load<u32>(STATE + S_BASE), 4);
    puts(" irq ");
    putDec(load<u32>(STATE + S_IRQ));
  }

  printCounters(): void {
    puts("ne2000: sent="); putDec(load<u32>(STATE + S_SENT));
    puts(" received="); putDec(load<u32>(STATE + S_RECEIVED));
    puts(" interrupts="); putDec(load<u32>(STATE + S_INTERRUPTS));
    puts(" errors="); putDec(load<u32>(STATE + S_ERRORS));
    puts(" port_exits="); putDec(load<u32>(STATE + S_EXITS));
    puts("\n");
  }

  private error(): void {
    store<u32>(STATE + S_ERRORS, load<u32>(STATE + S_ERRORS) + 1);
  }
}

/** True (and cleared) when the card interrupted since the last call. */
export function ne2000TakePending(): bool {
  const p = load<u32>(STATE + S_PENDING) != 0;
  store<u32>(STATE + S_PENDING, 0);
  return p;
}
