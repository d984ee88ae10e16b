import { describe, expect, it } from 'vitest';
import { IoBus } from '../../root-partition/devices/io-bus.ts';
import { PciBus } from '../../root-partition/devices/pci/pci-bus.ts';
import { Ne2000Pci } from '../../root-partition/devices/ne2000/ne2000-pci.ts';
import { ethernetCrc32 } from '../../root-partition/devices/ne2000/dp8390-registers.ts';

const MAC = Uint8Array.from([0x00, 0x15, 0x5d, 0x00, 0x00, 0x01]);
const BASE = 0xc100;

function rig() {
  const bus = new IoBus();
  const levels: boolean[] = [];
  const nic = new Ne2000Pci({ bus, mac: MAC, irqNumber: 11, irq: { set: (l) => levels.push(l) } });
  const sent: Uint8Array[] = [];
  nic.card.onTransmit = (f) => sent.push(f.slice());
  const out = (reg: number, v: number, size: 1 | 2 | 4 = 1) => bus.write(BASE + reg, size, v);
  const inb = (reg: number) => bus.read(BASE + reg, 1);
  const counters = () => bus.counters(nic.card)!;
  return { bus, nic, card: nic.card, levels, sent, out, inb, counters };
}

function exits(r: { bus: IoBus; card: import('../../root-partition/devices/ne2000/ne2000.ts').Ne2000 }): number {
  const c = r.bus.counters(r.card)!;
  return c.reads + c.writes + c.stringOps;
}

/** Linux lib8390.c NS8390_init + start, word mode. */
function linuxInit(r: ReturnType<typeof rig>) {
  const { out } = r;
  out(0x00, 0x21);
  out(0x0e, 0x49);
  out(0x0a, 0);
  out(0x0b, 0);
  out(0x0c, 0x20);
  out(0x0d, 0x02);
  out(0x04, 0x40);
  out(0x01, 0x4c);
  out(0x03, 0x7f);
  out(0x02, 0x80);
  out(0x07, 0xff);
  out(0x0f, 0x00);
  out(0x00, 0x61);
  for (let i = 0; i < 6; i++) out(0x01 + i, MAC[i]!);
  out(0x07, 0x4c);
  out(0x00, 0x21);
  out(0x07, 0xff);
  out(0x0f, 0x3f);
  out(0x00, 0x22);
  out(0x0d, 0x00);
  out(0x0c, 0x04);
}

function frame(dst: number[], len = 60): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(Array.from(MAC.map((b, i) => (i === 5 ? 0x02 : b))), 6);
  f[12] = 0x08;
  for (let i = 14; i < len; i++) f[i] = (i * 7) & 0xff;
  return f;
}

/** Transmit as Linux lib8390.c ei_start_xmit does (ne2k-pci, 32-bit string I/O). Returns the exits it took. */
function linuxTransmit(r: ReturnType<typeof rig>, f: Uint8Array): number {
  const { bus, out, inb } = r;
  const before = exits(r);
  const n = (f.length + 1) & ~1;
  out(0x0f, 0x00);
  out(0x00, 0x22);
  out(0x07, 0x40);
  out(0x0a, n & 0xff);
  out(0x0b, n >> 8);
  out(0x08, 0);
  out(0x09, 0x40);
  out(0x00, 0x12);
  const padded = new Uint8Array(n + 3);
  padded.set(f);
  bus.writeString(BASE + 0x10, 4, padded, n >> 2);
  if (n & 2) bus.write(BASE + 0x10, 2, padded[n - 2]! | (padded[n - 1]! << 8));
  expect(inb(0x07) & 0x40).toBe(0x40);
  out(0x07, 0x40);
  out(0x00, 0x20);
  inb(0x00);
  out(0x05, f.length & 0xff);
  out(0x06, f.length >> 8);
  out(0x04, 0x40);
  out(0x00, 0x26);
  out(0x0f, 0x3f);
  return exits(r) - before;
}

/** Receive one frame as Linux lib8390.c does (ei_receive). Returns the frame and the exits it took. */
function linuxReceive(r: ReturnType<typeof rig>): { frame: Uint8Array | undefined; exits: number; status: number } {
  const { bus, out, inb } = r;
  const before = exits(r);
  out(0x00, 0x20);
  const isr = inb(0x07);
  out(0x00, 0x60);
  const curr = inb(0x07);
  out(0x00, 0x20);
  const bnry = inb(0x03);
  let page = bnry + 1;
  if (page >= 0x80) page = 0x4c;
  if (page === curr) return { frame: undefined, exits: exits(r) - before, status: isr };
  out(0x00, 0x22);
  out(0x0a, 4);
  out(0x0b, 0);
  out(0x08, 0);
  out(0x09, page);
  out(0x00, 0x0a);
  const hdr = bus.read(BASE + 0x10, 4);
  const status = hdr & 0xff,
    next = (hdr >>> 8) & 0xff,
    count = hdr >>> 16;
  out(0x07, 0x40);
  out(0x00, 0x22);
  const n = count - 4;
  const addr = page * 256 + 4;
  out(0x0a, n & 0xff);
  out(0x0b, n >> 8);
  out(0x08, addr & 0xff);
  out(0x09, addr >> 8);
  out(0x00, 0x0a);
  const buf = new Uint8Array((n + 3) & ~3);
  bus.readString(BASE + 0x10, 4, buf, n >> 2);
  if (n & 2) {
    const w = bus.read(BASE + 0x10, 2);
    buf[n & ~3] = w & 0xff;
    buf[(n & ~3) + 1] = w >> 8;
  }
  if (n & 1) buf[n - 1] = bus.read(BASE + 0x10, 1);
  out(0x07, 0x40);
  out(0x03, next - 1 < 0x4c ? 0x7f : next - 1);
  out(0x00, 0x60);
  inb(0x07);
  out(0x00, 0x20);
  inb(0x03);
  out(0x07, 0x05);
  out(0x00, 0x22);
  inb(0x07);
  return { frame: buf.subarray(0, n), exits: exits(r) - before, status };
}

describe('NE2000 (DP8390): identity, PROM and reset', () => {
  it('enumerates as an RTL8029 with an I/O BAR, INTA and the firmware-programmed window', () => {
    const r = rig();
    const pci = new PciBus();
    pci.attach(10, 0, r.nic.config);
    r.bus.register(pci);
    const cfg = (reg: number) => {
      r.bus.write(0xcf8, 4, (0x80000000 | (10 << 11) | reg) >>> 0);
      return r.bus.read(0xcfc, 4);
    };
    expect(cfg(0x00)).toBe(0x802910ec);
    expect(cfg(0x08) >>> 8).toBe(0x020000);
    expect(cfg(0x10)).toBe(BASE | 1);
    expect(cfg(0x3c) & 0xffff).toBe(0x010b); // pin INTA, line 11
    // BAR sizing: write all ones, read back the 32-byte mask.
    r.bus.write(0xcf8, 4, (0x80000000 | (10 << 11) | 0x10) >>> 0);
    r.bus.write(0xcfc, 4, 0xffffffff);
    expect(r.bus.read(0xcfc, 4)).toBe(0x0000ffe1);
    expect(r.bus.read(BASE, 1)).toBe(0xff); // the window moved away from 0xC100
    r.bus.write(0xcfc, 4, 0xd000);
    expect(r.card.base).toBe(0xd000);
    expect(r.bus.read(0xd000, 1)).toBe(0x21);
  });

  it('reads the doubled station-address PROM with "WW" by remote DMA, and the RTL8029 id', () => {
    const r = rig();
    const { out, inb, bus } = r;
    out(0x00, 0x21);
    out(0x0e, 0x48);
    out(0x0a, 32);
    out(0x0b, 0);
    out(0x08, 0);
    out(0x09, 0);
    out(0x00, 0x0a);
    const prom = Array.from({ length: 32 }, () => bus.read(BASE + 0x10, 1));
    expect(prom.slice(0, 12)).toEqual([0, 0, 0x15, 0x15, 0x5d, 0x5d, 0, 0, 0, 0, 1, 1]);
    expect(prom.slice(28, 32)).toEqual([0x57, 0x57, 0x57, 0x57]);
    expect(inb(0x07) & 0x40).toBe(0x40); // RDC after 32 bytes
    expect([inb(0x0a), inb(0x0b)]).toEqual([0x50, 0x43]);
  });

  it('the reset port stops the card and sets ISR.RST; a start command clears RST', () => {
    const r = rig();
    linuxInit(r);
    expect(r.inb(0x07) & 0x80).toBe(0);
    r.inb(0x1f);
    r.out(0x1f, 0);
    expect(r.inb(0x00)).toBe(0x21);
    expect(r.inb(0x07) & 0x80).toBe(0x80);
    r.out(0x07, 0xff); // RST is read-only
    expect(r.inb(0x07) & 0x80).toBe(0x80);
    r.out(0x00, 0x22);
    expect(r.inb(0x07) & 0x80).toBe(0);
  });

  it('pages: page 1 holds PAR/CURR/MAR, page 2 reads back the page-0 configuration', () => {
    const r = rig();
    linuxInit(r);
    r.out(0x00, 0x62);
    expect(Array.from({ length: 6 }, (_, i) => r.inb(0x01 + i))).toEqual(Array.from(MAC));
    expect(r.inb(0x07)).toBe(0x4c);
    r.out(0x00, 0xa2);
    expect([r.inb(0x01), r.inb(0x02), r.inb(0x04)]).toEqual([0x4c, 0x80, 0x40]);
    expect(r.inb(0x0f) & 0x3f).toBe(0x3f);
    expect(r.inb(0x0e) & 0x7f).toBe(0x49);
  });
});

describe('NE2000: transmit and receive as Linux lib8390 does them', () => {
  it('transmits a 60-byte frame in 17 + 1 exits with one string OUT, then PTX and the interrupt', () => {
    const r = rig();
    linuxInit(r);
    const f = frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const exits = linuxTransmit(r, f);
    expect(r.sent).toEqual([f]);
    expect(exits).toBe(18); // 17 register accesses + 1 string OUT (lib8390.c with ne2k-pci.c)
    expect(r.inb(0x07) & 0x02).toBe(0x02);
    expect(r.inb(0x04)).toBe(0x01); // TSR.PTX
    expect(r.inb(0x00) & 0x04).toBe(0); // TXP cleared by the chip
    expect(r.levels.at(-1)).toBe(true);
    r.out(0x07, 0x02);
    expect(r.levels.at(-1)).toBe(false);
  });

  it('transmits a 1514-byte frame with exact bytes', () => {
    const r = rig();
    linuxInit(r);
    const f = frame(Array.from(MAC), 1514);
    linuxTransmit(r, f);
    expect(r.sent[0]).toEqual(f);
  });

  it('receives a frame into the ring with the 4-byte header; the Linux receive path reads it back exactly', () => {
    const r = rig();
    linuxInit(r);
    const f = frame(Array.from(MAC), 1000);
    expect(r.card.receive(f)).toBe(true);
    expect(r.levels.at(-1)).toBe(true);
    const got = linuxReceive(r);
    expect(got.frame).toEqual(f);
    expect(got.status & 0x01).toBe(0x01);
    expect(got.exits).toBe(30); // 29 register accesses + 1 string IN (lib8390.c with ne2k-pci.c) (1000 = 4 × 250)
    expect(r.levels.at(-1)).toBe(false);
    expect(linuxReceive(r).frame).toBeUndefined();
    // header: status PRX, next page = 0x4c + ceil((1000 + 8) / 256) = 0x50, count = 1004
    expect(Array.from(r.card.memory.subarray(0x4c00, 0x4c04))).toEqual([0x01, 0x50, 0xec, 0x03]);
  });

  it('pads short frames to 60 bytes and wraps frames across PSTOP back to PSTART', () => {
    const r = rig();
    linuxInit(r);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 200; i++) {
      const f = frame(Array.from(MAC), i % 3 === 0 ? 42 : 700 + i);
      f[20] = i;
      expect(r.card.receive(f)).toBe(true);
      const got = linuxReceive(r);
      const want = new Uint8Array(Math.max(60, f.length));
      want.set(f);
      expect(Buffer.from(got.frame!).equals(Buffer.from(want))).toBe(true);
      frames.push(f);
    }
    expect(r.card.counters.rxFrames).toBe(200);
  });

  it('refuses a frame when the ring is full, counts it in CNTR2, and loses nothing stored', () => {
    const r = rig();
    linuxInit(r);
    let stored = 0;
    for (let i = 0; i < 20; i++) if (r.card.receive(frame(Array.from(MAC), 1514))) stored++;
    expect(stored).toBe(8); // 51 free pages, 6 per full frame (1514 + 4 header + 4 CRC room)
    expect(r.card.counters.rxMissed).toBe(12);
    expect(r.inb(0x0f)).toBe(12); // CNTR2, cleared by the read
    expect(r.inb(0x0f)).toBe(0);
    for (let i = 0; i < 8; i++) expect(linuxReceive(r).frame?.length).toBe(1514);
    expect(r.card.receive(frame(Array.from(MAC), 1514))).toBe(true);
  });

  it('filters by PAR, the broadcast bit, the multicast hash and promiscuous mode; stopped cards take nothing', () => {
    const r = rig();
    expect(r.card.receive(frame(Array.from(MAC)))).toBe(false); // stopped
    linuxInit(r);
    const other = [0x00, 0x15, 0x5d, 0x00, 0x00, 0x99];
    const mcast = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
    expect(r.card.receive(frame(other))).toBe(false);
    expect(r.card.receive(frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBe(true);
    expect(r.card.receive(frame(mcast))).toBe(false);
    const crc = ethernetCrc32(Uint8Array.from(mcast), 0, 6);
    r.out(0x00, 0x62);
    r.out(0x08 + (crc >>> 29), 1 << ((crc >>> 26) & 7));
    r.out(0x00, 0x22);
    r.out(0x0c, 0x0c);
    expect(r.card.receive(frame(mcast))).toBe(true);
    r.out(0x0c, 0x00);
    expect(r.card.receive(frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBe(false);
    r.out(0x0c, 0x10);
    expect(r.card.receive(frame(other))).toBe(true);
    expect(r.card.counters.rxFiltered).toBe(3);
  });

  it('loops a frame back to itself in internal loopback instead of sending it', () => {
    const r = rig();
    linuxInit(r);
    r.out(0x0d, 0x02);
    linuxTransmit(r, frame(Array.from(MAC)));
    expect(r.sent).toHaveLength(0);
    r.out(0x0d, 0x00);
    expect(linuxReceive(r).frame?.length).toBe(60);
  });

  it('a remote DMA command with RBCR = 0 completes at once; data-port writes without a count are ignored', () => {
    const r = rig();
    linuxInit(r);
    r.out(0x07, 0x40);
    r.out(0x08, 0);
    r.out(0x09, 0x40);
    r.out(0x00, 0x12);
    expect(r.inb(0x07) & 0x40).toBe(0x40);
    r.bus.write(BASE + 0x10, 2, 0xbeef);
    expect(r.card.memory[0x4000]).toBe(0);
  });
});

describe('NE2000: hostile register programming', () => {
  it('refuses a transmit from outside card RAM or of an impossible length with TXE/ABT, sends nothing', () => {
    const r = rig();
    linuxInit(r);
    for (const [tpsr, len] of [
      [0x7f, 1514],
      [0x00, 60],
      [0x40, 13],
      [0x40, 0xffff],
    ] as const) {
      r.out(0x07, 0xff);
      r.out(0x05, len & 0xff);
      r.out(0x06, len >> 8);
      r.out(0x04, tpsr);
      r.out(0x00, 0x26);
      expect(r.inb(0x07) & 0x0a).toBe(0x08);
      expect(r.inb(0x04)).toBe(0x08);
    }
    expect(r.sent).toHaveLength(0);
    expect(r.card.counters.txErrors).toBe(4);
  });

  it('a ring programmed outside card RAM or with CURR outside it drops frames instead of writing wild', () => {
    const r = rig();
    linuxInit(r);
    const snapshot = r.card.memory.slice();
    for (const [pstart, pstop, curr] of [
      [0x00, 0x20, 0x00],
      [0x70, 0xff, 0x70],
      [0x50, 0x40, 0x50],
      [0x4c, 0x80, 0x20],
    ] as const) {
      r.out(0x00, 0x21);
      r.out(0x01, pstart);
      r.out(0x02, pstop);
      r.out(0x00, 0x61);
      r.out(0x07, curr);
      r.out(0x00, 0x22);
      expect(r.card.receive(frame(Array.from(MAC)))).toBe(false);
    }
    expect(Buffer.from(r.card.memory).equals(Buffer.from(snapshot))).toBe(true);
  });

  it('remote DMA reads wrap at PSTOP and return 0xFF outside card memory; writes there change nothing', () => {
    const r = rig();
    linuxInit(r);
    r.out(0x0a, 4);
    r.out(0x0b, 0);
    r.out(0x08, 0x00);
    r.out(0x09, 0x90);
    r.out(0x00, 0x0a);
    expect(r.bus.read(BASE + 0x10, 4)).toBe(0xffffffff);
    r.out(0x0a, 2);
    r.out(0x08, 0xff);
    r.out(0x09, 0x7f);
    r.out(0x00, 0x12);
    r.bus.write(BASE + 0x10, 2, 0xaabb);
    expect(r.card.memory[0x7fff]).toBe(0xbb);
    expect(r.card.memory[0x4c00]).toBe(0xaa); // wrapped from PSTOP (0x8000) to PSTART (0x4c00)
  });

  it('string I/O with random register values never throws into the bus', () => {
    const r = rig();
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const buf = new Uint8Array(4096);
    for (let i = 0; i < 20000; i++) {
      const reg = rnd() & 0x1f;
      if (rnd() & 1) r.out(reg, rnd());
      else r.inb(reg);
      if ((i & 63) === 0) {
        r.bus.readString(BASE + 0x10, 2, buf, 2048);
        r.card.receive(frame(Array.from(MAC), 60 + rnd() * 5));
      }
    }
    expect(r.counters().faults).toBe(0);
  });
});
