/**
 * Ports and connections (TLFS inter-partition-communication): a port lives in the receiving
 * partition and names where messages or events land; a connection lives in the sending partition
 * and is bound to one port. HvCallPostMessage/HvCallSignalEvent name a connection id; the
 * hypervisor finds the port. A child partition here talks only to its root, so one table per
 * child holds both directions: ports owned by the root (child → root) and ports owned by the
 * child (root → child), with the connections that lead to them.
 */
import { HvStatus } from '../abi/hv-status.ts';
import { HV_MESSAGE_MAX_PAYLOAD, HV_MESSAGE_SIZE, HV_PORT_ID_MASK, HV_PORT_MESSAGE_BUFFER_COUNT, HvPortType } from '../abi/hv-hypercall.ts';
import type { GuestMemory } from './guest-memory.ts';
import {
  CONN_ENTRY,
  CONN_ID,
  CONN_OWNER,
  CONN_PORT,
  CONNECTIONS_OFFSET,
  MAX_CONNECTIONS,
  MAX_PORTS,
  MAX_ROOT_MESSAGE_PORTS,
  Owner,
  P_DOORBELL,
  P_PORT_LOCK,
  P_ROOT_EVENT_FLAGS,
  P_ROOT_EVENT_SUMMARY,
  MAX_ROOT_DOORBELLS,
  P_ROOT_DOORBELLS,
  ROOT_DOORBELL_ENTRY,
  PORT_BASE_FLAG,
  PORT_ENTRY,
  PORT_FLAG_COUNT,
  PORT_ID,
  PORT_IN_FLIGHT,
  PORT_OWNER,
  PORT_TARGET_SINT,
  PORT_TARGET_VP,
  PORT_TYPE,
  PORTS_OFFSET,
  type PartitionControl,
  ROOT_QUEUE_BYTES,
  ROOT_QUEUE_HEADS,
  ROOT_QUEUES,
} from './partition-control.ts';
import { postToSint, signalSintEvent } from './synic/synic-delivery.ts';

export type OwnerValue = (typeof Owner)[keyof typeof Owner];

export interface PortInfo {
  type: HvPortType;
  /** Message/event ports owned by the child: the VP and SINT they target. */
  targetVp?: number;
  targetSint?: number;
  /** Event ports: first flag and number of flags. */
  baseFlag?: number;
  flagCount?: number;
}

export class PortTable {
  constructor(
    private readonly ctl: PartitionControl,
    private readonly mem: GuestMemory,
  ) {}

  private portField(index: number, field: number): number {
    return Atomics.load(this.ctl.i32, (PORTS_OFFSET + index * PORT_ENTRY + field) >> 2);
  }

  private findPort(owner: OwnerValue, portId: number): number {
    for (let i = 0; i < MAX_PORTS; i++) {
      if (this.portField(i, PORT_TYPE) !== 0 && this.portField(i, PORT_OWNER) === owner && this.portField(i, PORT_ID) === portId) return i;
    }
    return -1;
  }

  private findConnection(owner: OwnerValue, connectionId: number): number {
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const e = CONNECTIONS_OFFSET + i * CONN_ENTRY;
      if (this.ctl.i32[(e + CONN_PORT) >> 2] !== 0 && this.ctl.i32[(e + CONN_OWNER) >> 2] === owner && this.ctl.i32[(e + CONN_ID) >> 2] === connectionId)
        return i;
    }
    return -1;
  }

  /** HvCallCreatePort semantics. Root-owned message ports get one of the root's 16-buffer queues. */
  createPort(owner: OwnerValue, portId: number, info: PortInfo): HvStatus {
    if ((portId & ~HV_PORT_ID_MASK) !== 0) return HvStatus.InvalidParameter;
    if (info.type !== HvPortType.Message && info.type !== HvPortType.Event) return HvStatus.InvalidParameter;
    if (owner === Owner.Child) {
      if (!Number.isInteger(info.targetVp) || info.targetVp! < 0 || info.targetVp! >= this.ctl.vpCount) return HvStatus.InvalidVpIndex;
      if (!Number.isInteger(info.targetSint) || info.targetSint! < 0 || info.targetSint! > 15) return HvStatus.InvalidParameter;
    }
    if (info.type === HvPortType.Event) {
      const base = info.baseFlag ?? 0,
        count = info.flagCount ?? 0;
      if (base < 0 || count < 1 || base + count > 2048) return HvStatus.InvalidParameter;
    }
    this.ctl.lock(P_PORT_LOCK);
    try {
      if (this.findPort(owner, portId) >= 0) return HvStatus.InvalidPortId;
      let free = -1;
      for (let i = 0; i < MAX_PORTS && free < 0; i++) if (this.portField(i, PORT_TYPE) === 0) free = i;
      if (free < 0) return HvStatus.InsufficientMemory;
      let rootQueue = -1;
      if (owner === Owner.Root && info.type === HvPortType.Message) {
        const used = new Set<number>();
        for (let i = 0; i < MAX_PORTS; i++) {
          if (this.portField(i, PORT_TYPE) === HvPortType.Message && this.portField(i, PORT_OWNER) === Owner.Root) used.add(this.portField(i, PORT_TARGET_VP));
        }
        for (let q = 0; q < MAX_ROOT_MESSAGE_PORTS && rootQueue < 0; q++) if (!used.has(q)) rootQueue = q;
        if (rootQueue < 0) return HvStatus.InsufficientMemory;
        this.ctl.i32[(ROOT_QUEUE_HEADS + rootQueue * 8) >> 2] = 0;
        this.ctl.i32[(ROOT_QUEUE_HEADS + rootQueue * 8 + 4) >> 2] = 0;
      }
      const e = (PORTS_OFFSET + free * PORT_ENTRY) >> 2;
      const i32 = this.ctl.i32;
      i32[e + (PORT_ID >> 2)] = portId;
      i32[e + (PORT_OWNER >> 2)] = owner;
      i32[e + (PORT_TARGET_VP >> 2)] = owner === Owner.Root ? rootQueue : info.targetVp!;
      i32[e + (PORT_TARGET_SINT >> 2)] = info.targetSint ?? 0;
      i32[e + (PORT_BASE_FLAG >> 2)] = info.baseFlag ?? 0;
      i32[e + (PORT_FLAG_COUNT >> 2)] = info.flagCount ?? 0;
      i32[e + (PORT_IN_FLIGHT >> 2)] = 0;
      Atomics.store(i32, e + (PORT_TYPE >> 2), info.type);
      return HvStatus.Success;
    } finally {
      this.ctl.unlock(P_PORT_LOCK);
    }
  }

  /** HvCallDeletePort: frees the port, its undelivered root messages, and its connections. */
  deletePort(owner: OwnerValue, portId: number): HvStatus {
    this.ctl.lock(P_PORT_LOCK);
    try {
      const p = this.findPort(owner, portId);
      if (p < 0) return HvStatus.InvalidPortId;
      for (let i = 0; i < MAX_CONNECTIONS; i++) {
        const e = CONNECTIONS_OFFSET + i * CONN_ENTRY;
        if (this.ctl.i32[(e + CONN_PORT) >> 2] === p + 1) this.ctl.i32[(e + CONN_PORT) >> 2] = 0;
      }
      Atomics.store(this.ctl.i32, (PORTS_OFFSET + p * PORT_ENTRY + PORT_TYPE) >> 2, 0);
      return HvStatus.Success;
    } finally {
      this.ctl.unlock(P_PORT_LOCK);
    }
  }

  /** HvCallConnectPort: a connection owned by `owner` to the port `portId` of the other side. */
  connectPort(owner: OwnerValue, connectionId: number, portId: number): HvStatus {
    if ((connectionId & ~HV_PORT_ID_MASK) !== 0) return HvStatus.InvalidConnectionId;
    const portOwner = owner === Owner.Root ? Owner.Child : Owner.Root;
    this.ctl.lock(P_PORT_LOCK);
    try {
      const p = this.findPort(portOwner, portId);
      if (p < 0) return HvStatus.InvalidPortId;
      if (this.findConnection(owner, connectionId) >= 0) return HvStatus.InvalidConnectionId;
      for (let i = 0; i < MAX_CONNECTIONS; i++) {
        const e = CONNECTIONS_OFFSET + i * CONN_ENTRY;
        if (this.ctl.i32[(e + CONN_PORT) >> 2] !== 0) continue;
        this.ctl.i32[(e + CONN_ID) >> 2] = connectionId;
        this.ctl.i32[(e + CONN_OWNER) >> 2] = owner;
        Atomics.store(this.ctl.i32, (e + CONN_PORT) >> 2, p + 1);
        return HvStatus.Success;
      }
      return HvStatus.InsufficientMemory;
    } finally {
      this.ctl.unlock(P_PORT_LOCK);
    }
  }

  disconnectPort(owner: OwnerValue, connectionId: number): HvStatus {
    this.ctl.lock(P_PORT_LOCK);
    try {
      const c = this.findConnection(owner, connectionId);
      if (c < 0) return HvStatus.InvalidConnectionId;
      Atomics.store(this.ctl.i32, (CONNECTIONS_OFFSET + c * CONN_ENTRY + CONN_PORT) >> 2, 0);
      return HvStatus.Success;
    } finally {
      this.ctl.unlock(P_PORT_LOCK);
    }
  }

  private resolve(sender: OwnerValue, connectionId: number, type: HvPortType): { port: number; status: HvStatus } {
    if ((connectionId & ~HV_PORT_ID_MASK) !== 0) return { port: -1, status: HvStatus.InvalidConnectionId };
    const c = this.findConnection(sender, connectionId);
    if (c < 0) return { port: -1, status: HvStatus.InvalidConnectionId };
    const p = Atomics.load(this.ctl.i32, (CONNECTIONS_OFFSET + c * CONN_ENTRY + CONN_PORT) >> 2) - 1;
    if (p < 0 || this.portField(p, PORT_TYPE) !== type) return { port: -1, status: HvStatus.InvalidPortId };
    return { port: p, status: HvStatus.Success };
  }

  /**
   * HvCallPostMessage from `sender` on `connectionId`. The message lands in the child's SIM slot
   * (root → child) or in the root port's 16-buffer queue (child → root).
   */
  postMessage(sender: OwnerValue, connectionId: number, messageType: number, payload: Uint8Array): HvStatus {
    if (messageType === 0 || (messageType & 0x80000000) !== 0 || payload.length > HV_MESSAGE_MAX_PAYLOAD) return HvStatus.InvalidParameter;
    const { port, status } = this.resolve(sender, connectionId, HvPortType.Message);
    if (status !== HvStatus.Success) return status;
    const message = new Uint8Array(HV_MESSAGE_SIZE);
    const dv = new DataView(message.buffer);
    dv.setUint32(0, messageType >>> 0, true);
    message[4] = payload.length;
    dv.setUint32(8, this.portField(port, PORT_ID), true); // OriginationId: the port id
    message.set(payload, 16);
    if (sender === Owner.Root) {
      return postToSint(this.ctl, this.mem, this.portField(port, PORT_TARGET_VP), this.portField(port, PORT_TARGET_SINT), message, port);
    }
    return this.enqueueForRoot(port, message);
  }

  private enqueueForRoot(port: number, message: Uint8Array): HvStatus {
    const queue = this.portField(port, PORT_TARGET_VP);
    const h = (ROOT_QUEUE_HEADS + queue * 8) >> 2;
    this.ctl.lock(P_PORT_LOCK);
    try {
      const head = this.ctl.i32[h],
        tail = this.ctl.i32[h + 1];
      if (tail - head >= HV_PORT_MESSAGE_BUFFER_COUNT) return HvStatus.InsufficientBuffers;
      this.ctl.u8.set(message, ROOT_QUEUES + queue * ROOT_QUEUE_BYTES + (tail % HV_PORT_MESSAGE_BUFFER_COUNT) * HV_MESSAGE_SIZE);
      Atomics.store(this.ctl.i32, h + 1, tail + 1);
    } finally {
      this.ctl.unlock(P_PORT_LOCK);
    }
    this.ctl.ring(P_DOORBELL);
    return HvStatus.Success;
  }

  /** Takes the oldest message waiting on a root-owned message port (root side). */
  takeRootMessage(portId: number): Uint8Array | null {
    const port = this.findPort(Owner.Root, portId);
    if (port < 0 || this.portField(port, PORT_TYPE) !== HvPortType.Message) return null;
    const queue = this.portField(port, PORT_TARGET_VP);
    const h = (ROOT_QUEUE_HEADS + queue * 8) >> 2;
    this.ctl.lock(P_PORT_LOCK);
    try {
      const head = this.ctl.i32[h];
      if (head === Atomics.load(this.ctl.i32, h + 1)) return null;
      const at = ROOT_QUEUES + queue * ROOT_QUEUE_BYTES + (head % HV_PORT_MESSAGE_BUFFER_COUNT) * HV_MESSAGE_SIZE;
      const copy = this.ctl.u8.slice(at, at + HV_MESSAGE_SIZE);
      this.ctl.i32[h] = head + 1;
      return copy;
    } finally {
      this.ctl.unlock(P_PORT_LOCK);
    }
  }

  /** HvCallSignalEvent from `sender`: sets flag (base + flagNumber) of the port's target. */
  signalEvent(sender: OwnerValue, connectionId: number, flagNumber: number): HvStatus {
    const { port, status } = this.resolve(sender, connectionId, HvPortType.Event);
    if (status !== HvStatus.Success) return status;
    if (flagNumber < 0 || flagNumber >= this.portField(port, PORT_FLAG_COUNT)) return HvStatus.InvalidParameter;
    const flag = this.portField(port, PORT_BASE_FLAG) + flagNumber;
    if (sender === Owner.Root) {
      return signalSintEvent(this.ctl, this.mem, this.portField(port, PORT_TARGET_VP), this.portField(port, PORT_TARGET_SINT), flag);
    }
    const routed = this.portField(port, PORT_TARGET_SINT);
    if (routed > 0 && routed <= MAX_ROOT_DOORBELLS) {
      // Routed: only the thread sleeping on this doorbell is woken; the device thread is not.
      this.ctl.ring(rootDoorbell(routed - 1));
      return HvStatus.Success;
    }
    const word = (P_ROOT_EVENT_FLAGS >> 2) + (flag >>> 5);
    const mask = 1 << (flag & 31);
    if ((Atomics.or(this.ctl.i32, word, mask) & mask) === 0) {
      Atomics.store(this.ctl.i32, P_ROOT_EVENT_SUMMARY >> 2, 1);
      this.ctl.ring(P_DOORBELL);
    }
    return HvStatus.Success;
  }

  /** Claims a free root doorbell (an index for routeEvents and rootDoorbell), or -1 when all are taken. */
  claimDoorbell(): number {
    for (let i = 0; i < MAX_ROOT_DOORBELLS; i++) {
      if (Atomics.compareExchange(this.ctl.i32, (rootDoorbell(i) + 4) >> 2, 0, 1) === 0) return i;
    }
    return -1;
  }

  releaseDoorbell(index: number): void {
    if (Number.isInteger(index) && index >= 0 && index < MAX_ROOT_DOORBELLS) Atomics.store(this.ctl.i32, (rootDoorbell(index) + 4) >> 2, 0);
  }

  /**
   * Routes the signals on the root-owned event port `portId` to doorbell `index` (claimDoorbell),
   * or back to the root event flags and the main doorbell with null. A signal that raced the
   * change lands on either side: the caller serves the port once on both after switching.
   */
  routeEvents(portId: number, index: number | null): HvStatus {
    if (index !== null && (!Number.isInteger(index) || index < 0 || index >= MAX_ROOT_DOORBELLS)) return HvStatus.InvalidParameter;
    this.ctl.lock(P_PORT_LOCK);
    try {
      const p = this.findPort(Owner.Root, portId);
      if (p < 0 || this.portField(p, PORT_TYPE) !== HvPortType.Event) return HvStatus.InvalidPortId;
      Atomics.store(this.ctl.i32, (PORTS_OFFSET + p * PORT_ENTRY + PORT_TARGET_SINT) >> 2, index === null ? 0 : index + 1);
      return HvStatus.Success;
    } finally {
      this.ctl.unlock(P_PORT_LOCK);
    }
  }

  /** Takes and clears every set root event flag; calls `fn(flag)` for each (root side). */
  drainRootEvents(fn: (flag: number) => void): number {
    if (Atomics.exchange(this.ctl.i32, P_ROOT_EVENT_SUMMARY >> 2, 0) === 0) return 0;
    let n = 0;
    const first = P_ROOT_EVENT_FLAGS >> 2;
    for (let w = 0; w < 64; w++) {
      if (Atomics.load(this.ctl.i32, first + w) === 0) continue;
      let bits = Atomics.exchange(this.ctl.i32, first + w, 0);
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits);
        bits &= ~(1 << bit);
        fn((w << 5) | bit);
        n++;
      }
    }
    return n;
  }
}

/** Byte offset of root doorbell `index`'s sequence word in the control buffer (its waiters sleep on it). */
export function rootDoorbell(index: number): number {
  return P_ROOT_DOORBELLS + index * ROOT_DOORBELL_ENTRY;
}
