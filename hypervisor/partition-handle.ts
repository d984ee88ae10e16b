/**
 * The root partition's handle on a child partition: what device models and VSPs need (guest
 * memory, ports, the intercept inbox, interrupt and message injection), built from the two shared
 * buffers alone so it works on any thread of the VMWP. The VP threads and the partition's life
 * cycle stay with `Partition` on the thread that created it; a device thread attaches a handle.
 */
import { HvStatus } from '../abi/hv-status.ts';
import { GuestMemory } from './guest-memory.ts';
import { assertVector } from './interrupts.ts';
import { Owner, P_PARTITION_ID, PartitionControl } from './partition-control.ts';
import { PortTable } from './ports.ts';
import { ReferenceClock } from './reference-time.ts';
import { RootInbox } from './root-inbox.ts';

/** What a root-side consumer may use of a child partition, on whichever thread it runs. */
export interface ChildPartitionAccess {
  readonly id: number;
  readonly name: string;
  readonly vpCount: number;
  readonly ctl: PartitionControl;
  readonly mem: GuestMemory;
  readonly ports: PortTable;
  readonly inbox: RootInbox;
  assertInterrupt(vp: number, vector: number): HvStatus;
  postMessage(connectionId: number, messageType: number, payload: Uint8Array): HvStatus;
  signalEvent(connectionId: number, flagNumber: number): HvStatus;
  /** The partition's reference time, 100 ns units. */
  referenceTime(): number;
}

/** What crosses to another thread (postMessage / workerData) to attach a handle there. */
export interface PartitionShare {
  name: string;
  control: SharedArrayBuffer;
  memory: WebAssembly.Memory;
}

export function assertChildInterrupt(ctl: PartitionControl, vp: number, vector: number): HvStatus {
  if (!Number.isInteger(vp) || vp < 0 || vp >= ctl.vpCount) return HvStatus.InvalidVpIndex;
  if (!Number.isInteger(vector) || vector < 16 || vector > 255) return HvStatus.InvalidParameter;
  assertVector(ctl, vp, vector);
  return HvStatus.Success;
}

export class PartitionHandle implements ChildPartitionAccess {
  readonly id: number;
  readonly vpCount: number;
  readonly ctl: PartitionControl;
  readonly mem: GuestMemory;
  readonly ports: PortTable;
  readonly inbox: RootInbox;
  private readonly clock: ReferenceClock;

  constructor(
    readonly name: string,
    control: SharedArrayBuffer,
    memory: WebAssembly.Memory,
  ) {
    this.ctl = new PartitionControl(control);
    this.mem = GuestMemory.attach(memory);
    this.id = this.ctl.i32[P_PARTITION_ID >> 2];
    this.vpCount = this.ctl.vpCount;
    this.ports = new PortTable(this.ctl, this.mem);
    this.inbox = new RootInbox(this.ctl, this.mem, this.ports);
    this.clock = new ReferenceClock(this.ctl);
  }

  static attach(share: PartitionShare): PartitionHandle {
    return new PartitionHandle(share.name, share.control, share.memory);
  }

  assertInterrupt(vp: number, vector: number): HvStatus {
    return assertChildInterrupt(this.ctl, vp, vector);
  }

  postMessage(connectionId: number, messageType: number, payload: Uint8Array): HvStatus {
    return this.ports.postMessage(Owner.Root, connectionId, messageType, payload);
  }

  signalEvent(connectionId: number, flagNumber: number): HvStatus {
    return this.ports.signalEvent(Owner.Root, connectionId, flagNumber);
  }

  referenceTime(): number {
    this.clock.resync();
    return this.clock.now();
  }
}
