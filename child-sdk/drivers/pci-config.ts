// PCI configuration mechanism #1 (PCI Local Bus Specification 2.1, "Configuration Mechanism #1"): a dword address
// written to CONFIG_ADDRESS (0xCF8) — enable bit 31, bus 23:16, device 15:11, function 10:8,
// register 7:2 — selects the dword CONFIG_DATA (0xCFC) reads and writes. Each access is two exits.
import { inl, outl } from "../platform/hv";

/** Configuration mechanism #1 I/O ports: CONFIG_ADDRESS and CONFIG_DATA. */
export const PCI_CONFIG_ADDRESS: u32 = 0xcf8;
export const PCI_CONFIG_DATA: u32 = 0xcfc;

/** Configuration header offsets (PCI 2.1, Type 00h header). */
export const PCI_VENDOR_ID: u32 = 0x00;
export const PCI_COMMAND: u32 = 0x04;
export const PCI_CLASS_REVISION: u32 = 0x08;
export const PCI_HEADER_TYPE: u32 = 0x0c;
export const PCI_BAR4: u32 = 0x20;

/** Command register bits: I/O space decode, memory space decode, bus master. */
export const PCI_COMMAND_IO: u32 = 0x1;
export const PCI_COMMAND_MEMORY: u32 = 0x2;
export const PCI_COMMAND_BUS_MASTER: u32 = 0x4;

/** Vendor/device of the PIIX4 IDE function (Intel 82371AB datasheet, IDE configuration: DID 7111h). */
export const INTEL_VENDOR: u32 = 0x8086;
export const PIIX4_IDE_DEVICE: u32 = 0x7111;

/** bus:device.function packed as the config address bits 23:8, or -1 when nothing was found. */
export type PciFunction = i32;

function address(fn: PciFunction, reg: u32): u32 {
  return 0x8000_0000 | ((<u32>fn) << 8) | (reg & 0xfc);
}

/** Packs bus:device.function (masked to 8/5/3 bits) as a PciFunction. */
export function pciFunction(bus: u32, device: u32, fn: u32): PciFunction {
  return <i32>(((bus & 0xff) << 8) | ((device & 0x1f) << 3) | (fn & 7));
}

/** Reads the config dword at `reg` (low 2 bits ignored) of `fn`: two port exits. */
export function pciRead32(fn: PciFunction, reg: u32): u32 {
  outl(PCI_CONFIG_ADDRESS, address(fn, reg));
  return inl(PCI_CONFIG_DATA);
}

/** Writes `value` to the config dword at `reg` (low 2 bits ignored) of `fn`: two port exits. */
export function pciWrite32(fn: PciFunction, reg: u32, value: u32): void {
  outl(PCI_CONFIG_ADDRESS, address(fn, reg));
  outl(PCI_CONFIG_DATA, value);
}

/**
 * Scans bus 0 for `vendor:device`. Function 0 of every slot is probed; functions 1–7 only when the
 * header type says multi-function (bit 7), as the specification asks. An absent function reads
 * vendor FFFFh.
 */
export function pciFind(vendor: u32, device: u32): PciFunction {
  for (let dev: u32 = 0; dev < 32; dev++) {
    const f0 = pciFunction(0, dev, 0);
    const id0 = pciRead32(f0, PCI_VENDOR_ID);
    if ((id0 & 0xffff) == 0xffff) continue;
    const functions: u32 = (pciRead32(f0, PCI_HEADER_TYPE) >> 16) & 0x80 ? 8 : 1;
    for (let fn: u32 = 0; fn < functions; fn++) {
      const f = pciFunction(0, dev, fn);
      const id = fn == 0 ? id0 : pciRead32(f, PCI_VENDOR_ID);
      if ((id & 0xffff) == vendor && (id >> 16) == device) return f;
    }
  }
  return -1;
}

/**
 * The PIIX4 IDE function's bus-master block (BAR4, an I/O BAR: bit 0 set, base in 15:4 —
 * PIIX4 datasheet, BMIBA) with I/O decode and bus mastering switched on. 0 when there is no PIIX4
 * IDE function or its BAR is unassigned.
 */
export function piix4BusMasterBase(fn: PciFunction): u32 {
  if (fn < 0) return 0;
  const bar = pciRead32(fn, PCI_BAR4);
  if ((bar & 1) == 0) return 0;
  const base = bar & 0xfff0;
  if (base == 0) return 0;
  const cmd = pciRead32(fn, PCI_COMMAND) & 0xffff;
  // The status half (31:16) is write-1-to-clear on real parts: write only the command half back.
  pciWrite32(fn, PCI_COMMAND, cmd | PCI_COMMAND_IO | PCI_COMMAND_BUS_MASTER);
  return base;
}
