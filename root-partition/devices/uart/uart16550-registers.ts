/**
 * 16550 register offsets and bits (OpenVMM vm/devices/serial/serial_16550/src/spec.rs;
 * names from the NS PC16550D / NXP SC16C550B datasheets).
 */
export const UartReg = { RbrThrDll: 0, IerDlm: 1, IirFcr: 2, Lcr: 3, Mcr: 4, Lsr: 5, Msr: 6, Scr: 7 } as const;

export const Ier = { Rda: 0x01, Thre: 0x02, Rls: 0x04, Ms: 0x08 } as const;
/** IIR values: bit 0 = no interrupt pending; bits 3:1 the source; bits 7:6 = 11 with FIFOs enabled. */
export const Iir = { NoInterrupt: 0x01, ModemStatus: 0x00, Thre: 0x02, Rda: 0x04, Rls: 0x06, CharTimeout: 0x0c, FifoEnabled: 0xc0 } as const;
export const Fcr = { Enable: 0x01, ClearRx: 0x02, ClearTx: 0x04, DmaMode: 0x08 } as const;
export const Lcr = { Dlab: 0x80, Break: 0x40 } as const;
export const Mcr = { Dtr: 0x01, Rts: 0x02, Out1: 0x04, Out2: 0x08, Loop: 0x10 } as const;
export const Lsr = { Dr: 0x01, Oe: 0x02, Pe: 0x04, Fe: 0x08, Bi: 0x10, Thre: 0x20, Temt: 0x40, RxFifoError: 0x80 } as const;
export const Msr = { Dcts: 0x01, Ddsr: 0x02, Teri: 0x04, Ddcd: 0x08, Cts: 0x10, Dsr: 0x20, Ri: 0x40, Dcd: 0x80 } as const;

/** FIFO depth of the 16550 (both directions). */
export const FIFO_SIZE = 16;
/** RX trigger levels selected by FCR bits 7:6. */
export const RX_TRIGGER_LEVELS = [1, 4, 8, 14] as const;
/** Input clock 1.8432 MHz / 16: baud = 115200 / divisor. */
export const BAUD_BASE = 115200;

/** Standard PC serial ports. */
export const ComPort = {
  Com1: { base: 0x3f8, irq: 4 },
  Com2: { base: 0x2f8, irq: 3 },
} as const;
