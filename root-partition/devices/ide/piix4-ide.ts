import type { GuestMemory } from '../../../hypervisor/guest-memory.ts';
import type { IoBus } from '../io-bus.ts';
import type { InterruptLine } from '../port-io.ts';
import { PciCfg, PciCommand, PciConfigSpace } from '../pci/pci-config-space.ts';
import { AtaChannel } from './ata-channel.ts';
import type { AtaDrive } from './ata-drive.ts';
import { BusMasterIde } from './bus-master-ide.ts';
import { IdeChannelPorts, IdeLegacy } from './ide-channel-ports.ts';
import { restoreIdeState, saveIdeState } from './ide-state.ts';
import type { DeviceStateRecord, SavableDevice } from '../device-state.ts';

/**
 * PIIX4 IDE configuration registers beyond the header (Intel 82371AB PIIX4 datasheet, IDE configuration registers:
 * IDETIM primary 40–41h and secondary 42–43h with bit 15 = IDE decode enable, SIDETIM 44h,
 * UDMACTL 48h, UDMATIM 4A–4Bh). Linux ata_piix checks 41h/43h bit 7 for the decode enables.
 */
export const Piix4IdeCfg = { IdetimPrimary: 0x40, IdetimSecondary: 0x42, Sidetim: 0x44, Udmactl: 0x48, Udmatim: 0x4a } as const;
const IDETIM_DECODE_ENABLE = 0x8000;

/** PCI identity of the PIIX4 IDE function (OpenVMM pci_ids: 8086:7111, class word 0x01018001). */
export const PIIX4_IDE_ID = { vendorId: 0x8086, deviceId: 0x7111, revision: 0x01, classCode: 0x010180, headerType: 0x00 } as const;

/** The PIIX4 IDE function's configuration space; tells the owner when decoding must change. */
export class Piix4IdeConfig extends PciConfigSpace {
  onDecodeChange: (() => void) | undefined = undefined;

  constructor() {
    super('piix4-ide', PIIX4_IDE_ID);
    this.set16(PciCfg.Status, 0x0280); // fast back-to-back capable, medium DEVSEL timing
    this.set32(PciCfg.Bar4, 0x00000001); // I/O space indicator hard-wired to 1
    this.allowWrite(PciCfg.Command, 2, PciCommand.IoSpace | PciCommand.BusMaster);
    this.allowWrite(PciCfg.LatencyTimer, 1, 0xf0);
    this.allowWrite(PciCfg.Bar4, 4, 0x0000fff0); // BMIBA bits 15:4: a 16-byte I/O window below 64 KiB
    this.allowWrite(Piix4IdeCfg.IdetimPrimary, 2, 0xf3ff);
    this.allowWrite(Piix4IdeCfg.IdetimSecondary, 2, 0xf3ff);
    this.allowWrite(Piix4IdeCfg.Sidetim, 1, 0xff);
    this.allowWrite(Piix4IdeCfg.Udmactl, 1, 0x0f);
    this.allowWrite(Piix4IdeCfg.Udmatim, 2, 0x3333);
  }

  get bmideBase(): number {
    return this.get32(PciCfg.Bar4) & 0xfff0;
  }

  decodeEnabled(channel: 0 | 1): boolean {
    return (this.get16(channel === 0 ? Piix4IdeCfg.IdetimPrimary : Piix4IdeCfg.IdetimSecondary) & IDETIM_DECODE_ENABLE) !== 0;
  }

  protected override changed(offset: number, size: number): void {
    const touches = (o: number, n: number) => offset < o + n && o < offset + size;
    if (touches(PciCfg.Command, 2) || touches(PciCfg.Bar4, 4) || touches(Piix4IdeCfg.IdetimPrimary, 4)) this.onDecodeChange?.();
  }
}

export interface Piix4IdeOptions {
  memory: GuestMemory;
  bus: IoBus;
  /** IRQ 14 and IRQ 15 (legacy mode). */
  primaryIrq: InterruptLine;
  secondaryIrq: InterruptLine;
  primary?: readonly [AtaDrive | undefined, AtaDrive | undefined];
  secondary?: readonly [AtaDrive | undefined, AtaDrive | undefined];
  /**
   * What the BIOS would program at POST, since no BIOS runs here: BAR4 = this base, I/O space and
   * bus master enabled, both channels' decode enabled. `null` leaves the function as at PCI reset
   * (BAR4 = 1, command = 0, decode off), for a guest that enumerates and programs PCI itself.
   */
  firmwareBmideBase?: number | null;
}

/**
 * The PIIX4 IDE controller (PCI function 1 of the PIIX4): two legacy channels and the Bus Master
 * IDE block at BAR4. Ports are claimed and released on the I/O bus as the guest programs the
 * decode enables, BAR4 and the command register; a BAR moved onto ports another device owns is
 * left undecoded rather than stealing them.
 */
export class Piix4Ide implements SavableDevice {
  readonly config = new Piix4IdeConfig();
  readonly busMaster: BusMasterIde;
  readonly channels: readonly [AtaChannel, AtaChannel];
  readonly channelPorts: readonly [IdeChannelPorts, IdeChannelPorts];
  private readonly bus: IoBus;
  /** The last BAR4 placement that could not be decoded (conflict), for diagnostics. */
  bmideConflict: string | undefined = undefined;
  /** The last legacy channel decode that could not be claimed, for diagnostics. */
  decodeConflict: string | undefined = undefined;

  constructor(opts: Piix4IdeOptions) {
    this.bus = opts.bus;
    const busMasterEnabled = () => (this.config.command & PciCommand.BusMaster) !== 0;
    this.busMaster = new BusMasterIde(opts.memory, 0, busMasterEnabled);
    const [bm0, bm1] = this.busMaster.channels;
    const primary = new AtaChannel({
      name: 'primary',
      irq: opts.primaryIrq,
      memory: opts.memory,
      master: opts.primary?.[0],
      slave: opts.primary?.[1],
      busMaster: bm0,
    });
    const secondary = new AtaChannel({
      name: 'secondary',
      irq: opts.secondaryIrq,
      memory: opts.memory,
      master: opts.secondary?.[0],
      slave: opts.secondary?.[1],
      busMaster: bm1,
    });
    this.channels = [primary, secondary];
    this.channelPorts = [
      new IdeChannelPorts(primary, IdeLegacy.Primary.command, IdeLegacy.Primary.control),
      new IdeChannelPorts(secondary, IdeLegacy.Secondary.command, IdeLegacy.Secondary.control),
    ];
    // Drive-capable bits a BIOS sets for present drives (SFF-8038i BMIS bits 5/6).
    for (const [i, ch] of this.channels.entries()) {
      this.busMaster.channels[i]!.status = (ch.drives[0] ? 0x20 : 0) | (ch.drives[1] ? 0x40 : 0);
    }
    const fw = opts.firmwareBmideBase === undefined ? 0xc000 : opts.firmwareBmideBase;
    if (fw !== null) {
      this.config.writeConfig(PciCfg.Bar4, 4, fw);
      this.config.writeConfig(Piix4IdeCfg.IdetimPrimary, 2, IDETIM_DECODE_ENABLE);
      this.config.writeConfig(Piix4IdeCfg.IdetimSecondary, 2, IDETIM_DECODE_ENABLE);
      this.config.writeConfig(PciCfg.Command, 2, PciCommand.IoSpace | PciCommand.BusMaster);
    }
    this.config.onDecodeChange = () => this.updateDecode();
    this.updateDecode();
  }

  /**
   * VM reset: drives and bus-master engines return to their power-on state (signature, multiple
   * mode off, engines stopped). The configuration space keeps what the firmware step programmed,
   * as the BIOS would program it again on the way up.
   */
  reset(): void {
    for (const ch of this.channels) ch.reset();
    for (const bm of this.busMaster.channels) bm.reset();
  }

  saveState(): DeviceStateRecord {
    return saveIdeState(this);
  }

  /** Restores into a controller built with the same drives; ports are re-claimed per the restored configuration. */
  restoreState(record: DeviceStateRecord): void {
    restoreIdeState(this, record);
  }

  /** Re-reads the configuration registers and claims or releases the port blocks to match. */
  refreshDecode(): void {
    this.updateDecode();
  }

  /** Claims or releases each port block according to the configuration registers. */
  private updateDecode(): void {
    const ioOn = (this.config.command & PciCommand.IoSpace) !== 0;
    for (const i of [0, 1] as const) {
      const dev = this.channelPorts[i];
      const want = this.config.decodeEnabled(i);
      if (want && !this.bus.isRegistered(dev)) {
        try {
          this.bus.register(dev);
        } catch (err) {
          // Legacy ports taken by another device: the channel stays undecoded, nothing is stolen.
          this.decodeConflict = (err as Error).message;
        }
      } else if (!want && this.bus.isRegistered(dev)) {
        this.bus.unregister(dev);
      }
    }
    const base = this.config.bmideBase;
    const bm = this.busMaster;
    const want = ioOn && base !== 0;
    if (this.bus.isRegistered(bm) && (!want || bm.base !== base)) this.bus.unregister(bm);
    if (want && !this.bus.isRegistered(bm)) {
      bm.base = base;
      try {
        this.bus.register(bm);
        this.bmideConflict = undefined;
      } catch (err) {
        this.bmideConflict = (err as Error).message;
      }
    }
  }
}
