import type { AccessSize, PortIoDevice, PortRange } from '../port-io.ts';
import type { AtaChannel } from './ata-channel.ts';
import { AtaReg } from './ata-protocol.ts';

/** Legacy ISA decode of one channel (ATA/ATAPI-6; PIIX4 in compatibility mode). */
export const IdeLegacy = {
  Primary: { command: 0x1f0, control: 0x3f6, irq: 14 },
  Secondary: { command: 0x170, control: 0x376, irq: 15 },
} as const;

/**
 * The ports of one channel: the eight command block registers and the control block register
 * (alternate status / device control). 0x3F7/0x377 belong to the floppy controller and are not claimed.
 */
export class IdeChannelPorts implements PortIoDevice {
  readonly name: string;
  readonly ports: readonly PortRange[];

  constructor(
    readonly channel: AtaChannel,
    readonly commandBase: number,
    readonly controlPort: number,
  ) {
    this.name = `ide-${channel.name}`;
    this.ports = [
      { base: commandBase, length: 8 },
      { base: controlPort, length: 1 },
    ];
  }

  read(port: number, size: AccessSize): number {
    if (port === this.controlPort) return this.channel.readAltStatus();
    const reg = port - this.commandBase;
    if (reg === AtaReg.Data) return this.channel.readData(size);
    // Wider accesses to the 8-bit registers read consecutive registers (PIIX4 splits the cycle).
    let v = 0;
    for (let i = 0; i < size && reg + i < 8; i++) v |= this.channel.readRegister(reg + i) << (8 * i);
    return v >>> 0;
  }

  write(port: number, size: AccessSize, value: number): void {
    if (port === this.controlPort) {
      this.channel.writeControl(value & 0xff);
      return;
    }
    const reg = port - this.commandBase;
    if (reg === AtaReg.Data) {
      this.channel.writeData(size, value);
      return;
    }
    for (let i = 0; i < size && reg + i < 8; i++) this.channel.writeRegister(reg + i, (value >>> (8 * i)) & 0xff);
  }

  readString(port: number, size: AccessSize, dst: Uint8Array, count: number): number {
    if (port === this.commandBase + AtaReg.Data) return this.channel.readDataString(size, dst, count);
    for (let i = 0; i < count; i++) {
      const v = this.read(port, size);
      for (let b = 0; b < size; b++) dst[i * size + b] = (v >>> (8 * b)) & 0xff;
    }
    return count;
  }

  writeString(port: number, size: AccessSize, src: Uint8Array, count: number): number {
    if (port === this.commandBase + AtaReg.Data) return this.channel.writeDataString(size, src, count);
    for (let i = 0; i < count; i++) {
      let v = 0;
      for (let b = 0; b < size; b++) v |= src[i * size + b]! << (8 * b);
      this.write(port, size, v >>> 0);
    }
    return count;
  }
}
