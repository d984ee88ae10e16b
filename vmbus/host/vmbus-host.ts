/**
 * VMBus on one partition: binds the pure VmbusServer to the SynIC ports of the partition and the
 * VSPs to their channels (TLFS ports and connections; Linux drivers/hv/connection.c).
 *
 * | direction | how |
 * |---|---|
 * | guest → host control messages | root-owned message ports 1 (VMBUS_MESSAGE_CONNECTION_ID, all messages below 5.0 and after INITIATE_CONTACT from 5.0, since the host answers msg_conn_id 1) and 4 (INITIATE_CONTACT from 5.0); the port tells which connection was used |
 * | host → guest control messages | a child-owned message port on SINT2 of each VP, posted on a root connection; INSUFFICIENT_BUFFERS is retried, never dropped |
 * | guest → host channel signal | per open channel a root-owned event port (flag = relid) behind the child connection 16 + relid named in the offer |
 * | host → guest channel signal | a child-owned event port on SINT2 of each VP over all 2048 flags: flag `relid` in the SIEF (≥ 2.4; no monitor pages) |
 *
 * Everything runs on whichever thread serves the partition's RootInbox (serveAsync/serveBlocking).
 * This binding takes the inbox's event handler: VMBus owns the root event flags of the partition.
 */
import { HvPortType } from '../../abi/hv-hypercall.ts';
import { HvStatus } from '../../abi/hv-status.ts';
import { HvError } from '../../hypervisor/hv-error.ts';
import { Owner } from '../../hypervisor/partition-control.ts';
import type { ChildPartitionAccess } from '../../hypervisor/partition-handle.ts';
import {
  ChannelStatus,
  VMBUS_MAX_MESSAGE_SIZE,
  VMBUS_MESSAGE_CONNECTION_ID,
  VMBUS_MESSAGE_CONNECTION_ID_4,
  VMBUS_MESSAGE_SINT,
  VMBUS_SYNIC_MESSAGE_TYPE,
} from '../protocol/channel-constants.ts';
import { DEFAULT_LIMITS, type OpenedChannel, type VmbusServerLimits } from '../server/server-types.ts';
import { VmbusServer } from '../server/vmbus-server.ts';
import { buildChannelRings } from './channel-rings.ts';
import { GuestMessageOutbox, OUTBOX_ACCEPT_BELOW } from './guest-message-outbox.ts';
import { planRestore } from './vmbus-restore-plan.ts';
import { decodeVmbusState, encodeVmbusState } from './vmbus-saved-state.ts';
import { VspChannel, type VspChannelHost } from './vsp-channel.ts';
import { doorbellWord, type ChannelOffloadAccess } from './channel-offload.ts';
import type { Vsp } from './vsp.ts';

/** Port and connection ids of the binding (bits 23:0; TLFS HV_CONNECTION_ID). Root- and child-owned ids are separate name spaces. */
export const VmbusPorts = {
  /** Root-owned message ports, one per guest connection id they serve. */
  guestMessagePort: (connectionId: number) => connectionId,
  /** Child-owned SINT2 message port of VP `vp`, and the root connection to it. */
  hostMessagePort: (vp: number) => 0x100 + vp,
  /** Child-owned SINT2 event port of VP `vp`, and the root connection to it. */
  hostEventPort: (vp: number) => 0x200 + vp,
  /** Root-owned event port of channel `relid` (the guest's connection is the offer's 16 + relid). */
  channelEventPort: (relid: number) => 0x1000 + relid,
} as const;

export interface VmbusHostOptions {
  limits?: Partial<Omit<VmbusServerLimits, 'vpCount' | 'guestPageCount'>>;
  /** Where protocol errors and channel failures go; the host carries on after each. */
  log?: (error: HvError) => void;
}

export interface VmbusHostStats {
  messagesFromGuest: number;
  /** Channel traffic, summed over channels as they close (open channels: VspChannel.stats). */
  packetsIn: number;
  packetsOut: number;
  signalsToGuest: number;
  signalsFromGuest: number;
  protocolErrors: number;
  channelsOpened: number;
  channelsRefused: number;
  channelResets: number;
  /** Looks at the guest's message ports that found the outbox full and left the messages there. */
  guestMessagesHeldBack: number;
}

/**
 * The most host → guest messages that can ever wait in the outbox: fewer than `acceptBelow`
 * before a guest message is taken, plus what one guest message can produce (REQUESTOFFERS: an
 * offer per channel and ALLOFFERS_DELIVERED; a close or unload: a GPADL_TORNDOWN per GPADL),
 * plus what the host sends on its own (a rescind and a re-offer per channel).
 */
export function outboxCapacity(limits: Pick<VmbusServerLimits, 'maxChannels' | 'maxGpadls'>): number {
  return OUTBOX_ACCEPT_BELOW + 3 * limits.maxChannels + limits.maxGpadls + 16;
}

export class VmbusHost {
  readonly server: VmbusServer;
  readonly stats: VmbusHostStats = {
    messagesFromGuest: 0,
    packetsIn: 0,
    packetsOut: 0,
    signalsToGuest: 0,
    signalsFromGuest: 0,
    protocolErrors: 0,
    channelsOpened: 0,
    channelsRefused: 0,
    channelResets: 0,
    guestMessagesHeldBack: 0,
  };
  private readonly outbox: GuestMessageOutbox;
  private readonly vspByRelid = new Map<number, Vsp>();
  /** Every VSP ever added, in order: a saved state names them by position. */
  private readonly registered: Vsp[] = [];
  /** A save was taken: nothing is posted, drained or sent until resumeAfterSave(). */
  private saving = false;
  private readonly channels = new Map<number, VspChannel>();
  /** Relids rescinded after a protocol violation, to be offered again once released. */
  private readonly resetting = new Set<number>();
  private readonly log: (error: HvError) => void;
  private disposed = false;

  constructor(
    readonly partition: ChildPartitionAccess,
    options: VmbusHostOptions = {},
  ) {
    this.log = options.log ?? ((e) => console.error(`vmbus[${partition.name}] ${e.code}: ${e.message}`));
    const ports = partition.ports;
    const must = (status: HvStatus, what: string) => {
      if (status !== HvStatus.Success) throw new HvError('VMBUS_HOST_SETUP', `${what}: HV_STATUS 0x${status.toString(16)}`, status);
    };
    for (const conn of [VMBUS_MESSAGE_CONNECTION_ID, VMBUS_MESSAGE_CONNECTION_ID_4]) {
      must(ports.createPort(Owner.Root, VmbusPorts.guestMessagePort(conn), { type: HvPortType.Message }), `message port ${conn}`);
      must(ports.connectPort(Owner.Child, conn, VmbusPorts.guestMessagePort(conn)), `guest connection ${conn}`);
      // Back-pressure: no guest message is taken while the guest leaves the answers unconsumed.
      partition.inbox.onMessage(
        VmbusPorts.guestMessagePort(conn),
        (m) => this.onGuestMessage(m, conn),
        () => this.acceptingGuestMessages(),
      );
    }
    for (let vp = 0; vp < partition.vpCount; vp++) {
      const mp = VmbusPorts.hostMessagePort(vp),
        ep = VmbusPorts.hostEventPort(vp);
      must(ports.createPort(Owner.Child, mp, { type: HvPortType.Message, targetVp: vp, targetSint: VMBUS_MESSAGE_SINT }), `SINT2 message port of VP ${vp}`);
      must(ports.connectPort(Owner.Root, mp, mp), `host message connection of VP ${vp}`);
      must(
        ports.createPort(Owner.Child, ep, { type: HvPortType.Event, targetVp: vp, targetSint: VMBUS_MESSAGE_SINT, baseFlag: 0, flagCount: 2048 }),
        `SINT2 event port of VP ${vp}`,
      );
      must(ports.connectPort(Owner.Root, ep, ep), `host event connection of VP ${vp}`);
    }
    partition.inbox.onEvent((flag) => this.onGuestSignal(flag));
    const limits = { ...DEFAULT_LIMITS, ...options.limits, vpCount: partition.vpCount, guestPageCount: partition.mem.size / 4096 };
    this.outbox = new GuestMessageOutbox(
      (message, vp) => partition.postMessage(VmbusPorts.hostMessagePort(vp), VMBUS_SYNIC_MESSAGE_TYPE, message),
      (status, vp) =>
        this.error('VMBUS_MESSAGE_LOST', `post to VP ${vp} failed with HV_STATUS 0x${status.toString(16)}; the guest's SynIC is not accepting messages`),
      outboxCapacity(limits),
    );
    this.server = new VmbusServer(
      {
        sendToGuest: (message, vp) => this.outbox.send(message, vp),
        channelOpened: (open) => this.channelOpened(open),
        channelClosed: (relid) => this.channelClosed(relid),
        channelReleased: (relid) => this.channelReleased(relid),
        protocolError: (e) => {
          this.stats.protocolErrors++;
          this.log(e);
        },
      },
      limits,
    );
  }

  /** Registers a VSP and offers its channel (at REQUESTOFFERS, or at once if the guest has asked). Returns the relid. */
  addVsp(vsp: Vsp): number {
    const relid = this.server.offerChannel(vsp.offer);
    this.vspByRelid.set(relid, vsp);
    if (!this.registered.includes(vsp)) this.registered.push(vsp);
    return relid;
  }

  /** Hot-removes a VSP's channel (RESCIND_CHANNELOFFER). */
  removeVsp(vsp: Vsp): void {
    for (const [relid, v] of this.vspByRelid) {
      if (v !== vsp) continue;
      this.vspByRelid.delete(relid);
      this.server.rescindChannel(relid);
    }
  }

  /** The open channel with this relid. */
  channel(relid: number): VspChannel | undefined {
    return this.channels.get(relid);
  }
  relidOf(vsp: Vsp): number | undefined {
    for (const [relid, v] of this.vspByRelid) if (v === vsp) return relid;
    return undefined;
  }
  get messagesToGuest(): { sent: number; deferred: number; dropped: number; pending: number; highWater: number; capacity: number } {
    const o = this.outbox;
    return { sent: o.sent, deferred: o.deferred, dropped: o.dropped, pending: o.pending, highWater: o.highWater, capacity: o.capacity };
  }

  // ---- saved state ----------------------------------------------------------------------------

  /**
   * The whole VMBus state (server, GPADLs, queued host messages, which VSP holds which relid, each
   * open channel's VSP state) for a saved VM; the guest's VPs must be parked. From here the host
   * acts no more — nothing is posted, no ring is read or written, the VSPs' timers stop, host
   * callers still waiting on the guest get "unavailable" — so guest memory and the saved state
   * stay in agreement, until resumeAfterSave() (the save was not used) or dispose().
   *
   * Every VSP here runs each request to completion inside a drain (storvsp executes synchronously;
   * the integration services wait for the guest, which is state they save), so between drains
   * nothing is in flight on the host side: asserted below for every open channel.
   */
  saveState(): Uint8Array {
    if (this.disposed) throw new HvError('VMBUS_DISPOSED', 'the VMBus host has stopped');
    this.quiesce();
    const server = this.server.exportState();
    for (const c of server.channels) {
      const live = this.channels.get(c.relid);
      if ((c.state === 'open') !== (live !== undefined && live.state === 'open')) {
        throw new HvError('VMBUS_SAVE_INCONSISTENT', `relid ${c.relid} is ${c.state} in the server but its channel is ${live?.state ?? 'absent'}`);
      }
      if (live?.isDraining) throw new HvError('VMBUS_SAVE_INCONSISTENT', `relid ${c.relid} is in the middle of a drain`);
    }
    const vsps = this.registered.map((v) => {
      const relid = this.relidOf(v) ?? 0;
      return { interfaceType: v.offer.interfaceType, interfaceInstance: v.offer.interfaceInstance, relid, resetting: this.resetting.has(relid) };
    });
    const channelStates = [...this.channels.values()].filter((ch) => ch.vsp.saveChannel).map((ch) => ({ relid: ch.relid, state: ch.vsp.saveChannel!(ch) }));
    return encodeVmbusState({ server, outbox: this.outbox.waiting(), vsps, channelStates });
  }

  /** The save was not used: post, drain and run the VSPs' timers again; each open channel is drained once. */
  resumeAfterSave(): void {
    if (!this.saving || this.disposed) return;
    this.saving = false;
    for (const vsp of this.registered) vsp.resumeAfterSave?.();
    for (const ch of this.channels.values()) ch.held = false;
    this.outbox.release();
    for (const ch of [...this.channels.values()]) ch.drain(); // a signal that came while held was not served
  }

  get savingState(): boolean {
    return this.saving;
  }

  private quiesce(): void {
    if (this.saving) return;
    this.saving = true;
    this.outbox.hold();
    for (const ch of this.channels.values()) ch.held = true;
    for (const vsp of this.registered) vsp.quiesce?.();
  }

  /**
   * Restores a saved state into this host, freshly built on the (parked) partition with the same
   * VSPs added in the same order as when it was saved, before the guest runs again. Everything is
   * checked first (vmbus-restore-plan.ts, each VSP's restoreChannel); a state that does not fit
   * throws VMBUS_BAD_SAVED_STATE (or the VSP's error) and leaves this host as it was. Then: the
   * server takes its records, each open channel gets its event port and its rings over the guest's
   * pages as they are, its VSP its state, the queued messages go to the outbox in order, and every
   * open channel is drained once (packets the guest wrote while parked, a ring left masked).
   */
  restoreState(bytes: Uint8Array): void {
    if (this.disposed || this.saving || this.channels.size > 0 || this.server.connectionPhase !== 'disconnected') {
      throw new HvError('VMBUS_RESTORE_NOT_FRESH', 'a saved state is restored only into a VMBus host the guest has not used yet');
    }
    const saved = decodeVmbusState(bytes);
    const plan = planRestore(saved, this.registered, this.server.serverLimits, this.outbox.capacity, this.partition.mem);
    const channels = plan.opens.map((o) => new VspChannel(this.partition.mem, o.vsp, o.open, o.rings, this.channelHost));
    const steps = plan.opens.map((o, i) => o.vsp.restoreChannel!(channels[i]!, o.vspState));
    const ports = this.partition.ports;
    const created: number[] = [];
    for (const o of plan.opens) {
      const port = VmbusPorts.channelEventPort(o.open.relid);
      let status = ports.createPort(Owner.Root, port, { type: HvPortType.Event, baseFlag: o.open.relid, flagCount: 1 });
      if (status === HvStatus.Success) status = ports.connectPort(Owner.Child, o.open.connectionId, port);
      if (status !== HvStatus.Success) {
        ports.deletePort(Owner.Root, port);
        for (const p of created) ports.deletePort(Owner.Root, p);
        throw new HvError('VMBUS_RESTORE_PORTS', `event port for relid ${o.open.relid}: HV_STATUS 0x${status.toString(16)}`, status);
      }
      created.push(port);
    }
    // From here nothing can fail: the checks above covered every value applied below.
    const specOf = new Map([...plan.bindings].map(([relid, vsp]) => [relid, vsp.offer]));
    this.server.importState(saved.server, (c) => {
      const offer = specOf.get(c.subChannelIndex === 0 ? c.relid : c.primaryRelid);
      return offer ? { ...offer, userDefined: offer.userDefined?.slice() } : { interfaceType: c.interfaceType, interfaceInstance: c.interfaceInstance };
    });
    this.vspByRelid.clear();
    for (const [relid, vsp] of plan.bindings) this.vspByRelid.set(relid, vsp);
    this.resetting.clear();
    for (const relid of plan.resetting) this.resetting.add(relid);
    channels.forEach((ch, i) => {
      this.channels.set(ch.relid, ch);
      steps[i]!();
    });
    for (const m of saved.outbox) this.outbox.send(m.message, m.vp);
    for (const ch of channels) ch.drain();
  }

  private acceptingGuestMessages(): boolean {
    if (this.saving) return false; // taken after the save is used or abandoned
    this.outbox.flush(); // the guest may have consumed since the last look
    if (!this.outbox.full) return true;
    this.stats.guestMessagesHeldBack++;
    return false;
  }

  private onGuestMessage(message: Uint8Array, connectionId: number): void {
    this.outbox.flush(); // the guest is running: earlier refused posts may fit now
    const dv = new DataView(message.buffer, message.byteOffset, message.byteLength);
    const type = dv.getUint32(0, true);
    const size = message[4];
    if (type !== VMBUS_SYNIC_MESSAGE_TYPE || size > VMBUS_MAX_MESSAGE_SIZE) {
      return this.error('VMBUS_BAD_MESSAGE', `SynIC message type ${type}, ${size} bytes on connection ${connectionId}`);
    }
    this.stats.messagesFromGuest++;
    // `message` is already the root's private copy of the HV_MESSAGE (PortTable.takeRootMessage).
    this.server.handleGuestMessage(message.subarray(16, 16 + size), connectionId);
  }

  private onGuestSignal(flag: number): void {
    this.outbox.flush();
    this.channels.get(flag)?.onGuestSignal();
  }

  private channelOpened(open: OpenedChannel): number {
    const vsp = this.vspByRelid.get(open.primaryRelid);
    if (!vsp) return ChannelStatus.Unsuccessful;
    const refuse = (status: number, reason: string): number => {
      this.stats.channelsRefused++;
      this.error('VMBUS_OPEN_REFUSED', `relid ${open.relid}: ${reason}`);
      return status;
    };
    const built = buildChannelRings(this.partition.mem, open);
    if (!built.ok) return refuse(ChannelStatus.InvalidParameter, built.reason);
    const ports = this.partition.ports;
    const port = VmbusPorts.channelEventPort(open.relid);
    let status = ports.createPort(Owner.Root, port, { type: HvPortType.Event, baseFlag: open.relid, flagCount: 1 });
    if (status === HvStatus.Success) status = ports.connectPort(Owner.Child, open.connectionId, port);
    if (status !== HvStatus.Success) {
      ports.deletePort(Owner.Root, port);
      return refuse(ChannelStatus.InsufficientResources, `event port for connection ${open.connectionId}: HV_STATUS 0x${status.toString(16)}`);
    }
    const channel = new VspChannel(this.partition.mem, vsp, open, built.rings, this.channelHost);
    const result = vsp.onOpen(channel) >>> 0;
    if (result !== ChannelStatus.Success) {
      ports.deletePort(Owner.Root, port);
      return refuse(result, `the VSP refused the open (0x${result.toString(16)})`);
    }
    this.channels.set(open.relid, channel);
    this.stats.channelsOpened++;
    return ChannelStatus.Success;
  }

  private channelClosed(relid: number): void {
    const channel = this.channels.get(relid);
    if (!channel) return;
    this.channels.delete(relid);
    // Deleting the port also drops the guest's connection 16 + relid: later signals get INVALID_CONNECTION_ID.
    this.partition.ports.deletePort(Owner.Root, VmbusPorts.channelEventPort(relid));
    channel.close();
    const s = channel.stats;
    this.stats.packetsIn += s.packetsIn;
    this.stats.packetsOut += s.packetsOut;
    this.stats.signalsToGuest += s.signalsToGuest;
    this.stats.signalsFromGuest += s.signalsFromGuest;
  }

  private channelReleased(relid: number): void {
    const vsp = this.vspByRelid.get(relid);
    if (!vsp) return;
    this.vspByRelid.delete(relid);
    if (this.resetting.delete(relid) && !this.disposed) {
      // A channel reset after a protocol violation: offer the device again (hot add) once the
      // guest has released the old relid. Deferred: the server must not be re-entered.
      queueMicrotask(() => {
        if (!this.disposed) this.addVsp(vsp);
      });
    }
  }

  /**
   * A channel broke the ring protocol: it is closed from the host side and rescinded, so the guest
   * learns of it (RESCIND_CHANNELOFFER) and the host never touches its pages again; once the guest
   * releases the relid the device is offered afresh. The partition runs on.
   */
  private channelFailed(channel: VspChannel, reason: string): void {
    this.stats.channelResets++;
    this.error('VMBUS_CHANNEL_RESET', `relid ${channel.relid}: ${reason}`);
    if (channel.subChannelIndex === 0) this.resetting.add(channel.relid);
    this.server.rescindChannel(channel.relid);
  }

  private readonly channelHost: VspChannelHost = {
    signalGuest: (ch) => this.signalGuest(ch),
    channelFailed: (ch, reason) => this.channelFailed(ch, reason),
    offloadAccess: (ch) => this.offloadAccess(ch),
  };

  /** Lets a VSP serve an open channel's rings on a thread of its own (channel-offload.ts). */
  private offloadAccess(channel: VspChannel): ChannelOffloadAccess | null {
    if (this.disposed) return null;
    const p = this.partition;
    const port = VmbusPorts.channelEventPort(channel.relid);
    let doorbell = -1;
    return {
      share: { name: p.name, control: p.ctl.sab, memory: p.mem.memory },
      claim: () => {
        if (doorbell < 0) doorbell = p.ports.claimDoorbell();
        if (doorbell < 0) return null;
        const { inbound, outbound } = channel.rings;
        return {
          relid: channel.relid,
          connectionId: channel.connectionId,
          targetVp: channel.targetVp,
          subChannelIndex: channel.subChannelIndex,
          primaryRelid: channel.primaryRelid,
          inboundControlGpa: inbound.controlGpa,
          inboundDataSize: inbound.dataSize,
          outboundControlGpa: outbound.controlGpa,
          outboundDataSize: outbound.dataSize,
          doorbell,
          doorbellWord: doorbellWord(doorbell),
        };
      },
      route: () => doorbell >= 0 && p.ports.routeEvents(port, doorbell) === HvStatus.Success,
      // Fails only when the port is gone (the channel closed): nothing is routed then.
      unroute: () => void p.ports.routeEvents(port, null),
      release: () => {
        p.ports.routeEvents(port, null);
        if (doorbell >= 0) p.ports.releaseDoorbell(doorbell);
        doorbell = -1;
      },
    };
  }

  private signalGuest(channel: VspChannel): boolean {
    const status = this.partition.signalEvent(VmbusPorts.hostEventPort(channel.targetVp), channel.relid);
    if (status === HvStatus.Success) return true;
    this.error('VMBUS_SIGNAL_FAILED', `relid ${channel.relid} → VP ${channel.targetVp}: HV_STATUS 0x${status.toString(16)}`);
    return false;
  }

  private error(code: string, message: string): void {
    this.log(new HvError(code, message));
  }

  /** Stops serving: channels closed, ports deleted, queued messages dropped. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.outbox.close();
    for (const relid of [...this.channels.keys()]) this.channelClosed(relid);
    const ports = this.partition.ports;
    for (const conn of [VMBUS_MESSAGE_CONNECTION_ID, VMBUS_MESSAGE_CONNECTION_ID_4]) ports.deletePort(Owner.Root, VmbusPorts.guestMessagePort(conn));
    for (let vp = 0; vp < this.partition.vpCount; vp++) {
      ports.deletePort(Owner.Child, VmbusPorts.hostMessagePort(vp));
      ports.deletePort(Owner.Child, VmbusPorts.hostEventPort(vp));
    }
    this.partition.inbox.onEvent(() => {});
  }
}
