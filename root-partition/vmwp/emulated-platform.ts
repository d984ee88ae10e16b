/**
 * The root partition's emulated PC platform for one child: the Generation 1 chipset (8259 pair,
 * COM1/COM2, PCI with the PIIX4 IDE controller and its disks) wired as the partition's intercept
 * handler. The PIC's INT output becomes a vector on VP 0 (the INTA cycle runs when the request
 * rises), which is how ExtINT reaches a guest without a local APIC model.
 */
import type { ChildPartitionAccess } from '../../hypervisor/partition-handle.ts';
import type { InterceptHandler, IoSize } from '../../hypervisor/root-inbox.ts';
import { Gen1Chipset, type IdeAttachment, type LegacyNicAttachment } from '../devices/gen1-chipset.ts';
import type { UartSink } from '../devices/uart/uart16550.ts';
import type { DeviceStateRecord } from '../devices/device-state.ts';

export interface EmulatedPlatformOptions {
  /** Console output (COM1). */
  console?: UartSink;
  /** IDE drives: [primary master, primary slave, secondary master, secondary slave]. */
  ide?: readonly (IdeAttachment | undefined)[];
  /** Legacy (NE2000) NICs; connect each `chipset.nics[i].card` to a switch port. */
  nics?: readonly LegacyNicAttachment[];
}

/**
 * INTA cycles run per rising request. A guest can program the PIC so that a request never
 * clears (auto-EOI with a level-triggered line held high): bound the cycles so the device
 * thread always returns to serve exits; the rest are taken at the next request.
 */
const MAX_INTA_PER_REQUEST = 16;

export class EmulatedPlatform implements InterceptHandler {
  readonly chipset: Gen1Chipset;

  constructor(
    private readonly partition: ChildPartitionAccess,
    opts: EmulatedPlatformOptions = {},
  ) {
    this.chipset = new Gen1Chipset({ memory: partition.mem, ide: opts.ide, com1Sink: opts.console, nics: opts.nics });
    const pic = this.chipset.pic;
    pic.onInterruptRequest = () => {
      for (let n = 0; n < MAX_INTA_PER_REQUEST && pic.hasInterrupt(); n++) this.partition.assertInterrupt(0, pic.acknowledge());
    };
  }

  get bus() {
    return this.chipset.bus;
  }
  get pic() {
    return this.chipset.pic;
  }
  get com1() {
    return this.chipset.com1;
  }
  get com2() {
    return this.chipset.com2;
  }

  /** One record per device of the chipset (PIC, COM1, COM2, PCI, IDE), for the saved-state file. */
  saveState(): DeviceStateRecord[] {
    return this.chipset.saveState();
  }

  /** All or nothing: a missing, unknown or bad record leaves every device as it was. */
  restoreState(records: readonly DeviceStateRecord[]): void {
    this.chipset.restoreState(records);
  }

  ioRead(_vp: number, port: number, size: IoSize): number {
    return this.chipset.bus.read(port, size);
  }

  ioWrite(_vp: number, port: number, size: IoSize, value: number): void {
    this.chipset.bus.write(port, size, value);
  }

  // A device may move fewer units than asked (an IDE transfer that ended); the rest of the
  // buffer is left as it was, which is what a rep ins past the end of a transfer sees.
  ioReadString(_vp: number, port: number, size: IoSize, dst: Uint8Array, count: number): void {
    this.chipset.bus.readString(port, size, dst, count);
  }

  ioWriteString(_vp: number, port: number, size: IoSize, src: Uint8Array, count: number): void {
    this.chipset.bus.writeString(port, size, src, count);
  }
}
