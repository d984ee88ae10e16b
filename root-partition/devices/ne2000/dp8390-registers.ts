/**
 * DP8390 / NE2000 register facts (National DP8390D datasheet as transcribed by Linux
 * drivers/net/ethernet/8390/8390.h, FreeBSD sys/dev/ed/if_edreg.h and QEMU hw/net/ne2000.c).
 * Register offsets are from the I/O base; the page is CR bits 7:6.
 */
export const Dp8390Reg = {
  Cr: 0x00,
  // page 0 (write names; reads differ where noted)
  Pstart: 0x01, // read: CLDA0
  Pstop: 0x02, // read: CLDA1
  Bnry: 0x03,
  Tpsr: 0x04, // read: TSR
  Tbcr0: 0x05, // read: NCR
  Tbcr1: 0x06, // read: FIFO
  Isr: 0x07,
  Rsar0: 0x08, // read: CRDA0
  Rsar1: 0x09, // read: CRDA1
  Rbcr0: 0x0a, // read: RTL8029 id 0x50
  Rbcr1: 0x0b, // read: RTL8029 id 0x43
  Rcr: 0x0c, // read: RSR
  Tcr: 0x0d, // read: CNTR0
  Dcr: 0x0e, // read: CNTR1
  Imr: 0x0f, // read: CNTR2
  // page 1
  Par0: 0x01,
  Curr: 0x07,
  Mar0: 0x08,
} as const;

/** NE2000 ASIC ports beyond the DP8390 (Linux ne.c NE_DATAPORT, NE_RESET, NE_IO_EXTENT). */
export const NE_DATAPORT = 0x10;
export const NE_RESET = 0x1f;
export const NE_IO_EXTENT = 0x20;

export const Cr = {
  Stp: 0x01,
  Sta: 0x02,
  Txp: 0x04,
  RemoteRead: 0x08,
  RemoteWrite: 0x10,
  SendPacket: 0x18,
  NoDma: 0x20,
  DmaMask: 0x38,
  PageMask: 0xc0,
} as const;
export const Isr = { Prx: 0x01, Ptx: 0x02, Rxe: 0x04, Txe: 0x08, Ovw: 0x10, Cnt: 0x20, Rdc: 0x40, Rst: 0x80 } as const;
export const Rcr = { Sep: 0x01, Ar: 0x02, Ab: 0x04, Am: 0x08, Pro: 0x10, Mon: 0x20 } as const;
export const Tcr = { Crc: 0x01, LoopbackMask: 0x06, Atd: 0x08, Ofst: 0x10 } as const;
export const Dcr = { Wts: 0x01, Bos: 0x02, Las: 0x04, Ls: 0x08, Ar: 0x10 } as const;
export const Rsr = { Prx: 0x01, Crc: 0x02, Fae: 0x04, Fo: 0x08, Mpa: 0x10, Phy: 0x20, Dis: 0x40, Dfr: 0x80 } as const;
export const Tsr = { Ptx: 0x01, Col: 0x04, Abt: 0x08, Crs: 0x10, Fu: 0x20, Cdh: 0x40, Owc: 0x80 } as const;

/** RTL8029AS chip id bytes read at page 0 offsets 0x0A/0x0B ('P', 'C'). */
export const RTL8029_ID = [0x50, 0x43] as const;

/**
 * Card memory of a 16-bit NE2000: 16 KiB of RAM at 0x4000–0x7FFF (pages 0x40–0x7F; Linux ne.c
 * NESM_START_PG/NESM_STOP_PG) and the 32-byte station-address PROM at 0x0000–0x001F.
 */
export const NE_RAM_START = 0x4000;
export const NE_RAM_END = 0x8000;
export const NE_PROM_BYTES = 32;
export const PAGE_BYTES = 256;
/** Shortest frame the card stores (the 64-byte minimum less the FCS it does not keep). */
export const ETH_MIN_FRAME = 60;
/** The receive header the card writes before each frame: status, next page, count (LE u16). */
export const RX_HEADER_BYTES = 4;

/** Ethernet CRC-32 (the multicast hash uses its top 6 bits: MAR byte crc >> 29, bit (crc >> 26) & 7). */
export function ethernetCrc32(bytes: Uint8Array, offset: number, length: number): number {
  let crc = 0xffffffff;
  for (let i = 0; i < length; i++) {
    let b = bytes[offset + i]!;
    for (let k = 0; k < 8; k++) {
      const carry = ((crc >>> 31) ^ (b & 1)) & 1;
      crc = (crc << 1) >>> 0;
      b >>= 1;
      if (carry) crc = (crc ^ 0x04c11db7) >>> 0;
    }
  }
  return crc >>> 0;
}
