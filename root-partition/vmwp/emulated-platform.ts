/**
 * The root partition's emulated PC platform for one child: the I/O bus with the legacy devices
 * every guest can count on (the 8259 pair and COM1/COM2), wired as the partition's intercept
 * handler. The PIC's INT output is turned into a vector on VP 0 (the INTA cycle happens when
 * the request rises), which is how ExtINT reaches a guest without a local APIC model.
 */
import type { Partition } from '../../hypervisor/partition.ts';
import type { InterceptHandler, IoSize } from '../../hypervisor/root-inbox.ts';
import { IoBus } from '../devices/io-bus.ts';
import { Pic8259 } from '../devices/pic/pic8259.ts';
import { Uart16550, type UartSink } from '../devices/uart/uart16550.ts';
import { COM1_BASE, COM2_BASE } from '../../abi/platform.ts';

export interface EmulatedPlatformOptions {
  /** Console output (COM1). */
  console?: UartSink;
}

export class EmulatedPlatform implements InterceptHandler {
  readonly bus = new IoBus();
  readonly pic = new Pic8259();
  readonly com1: Uart16550;
  readonly com2: Uart16550;

  constructor(private readonly partition: Partition, opts: EmulatedPlatformOptions = {}) {
    this.com1 = new Uart16550({ name: 'com1', base: COM1_BASE, irq: this.pic.line(4), sink: opts.console });
    this.com2 = new Uart16550({ name: 'com2', base: COM2_BASE, irq: this.pic.line(3) });
    this.bus.register(this.pic);
    this.bus.register(this.com1);
    this.bus.register(this.com2);
    this.pic.onInterruptRequest = () => {
      while (this.pic.hasInterrupt()) this.partition.assertInterrupt(0, this.pic.acknowledge());
    };
  }

  ioRead(_vp: number, port: number, size: IoSize): number {
    return this.bus.read(port, size);
  }

  ioWrite(_vp: number, port: number, size: IoSize, value: number): void {
    this.bus.write(port, size, value);
  }

  ioReadString(_vp: number, port: number, size: IoSize, dst: Uint8Array, count: number): void {
    this.bus.readString(port, size, dst, count);
  }

  ioWriteString(_vp: number, port: number, size: IoSize, src: Uint8Array, count: number): void {
    this.bus.writeString(port, size, src, count);
  }
}
