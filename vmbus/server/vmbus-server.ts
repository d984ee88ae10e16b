/**
 * The VMBus server for one guest connection: a pure state machine (no threads, no timers) fed
 * with the guest's control messages and the VSPs' offers, acting only through the notifier.
 * Protocol: Linux include/linux/hyperv.h, drivers/hv/channel_mgmt.c; behaviour follows QEMU hw/hyperv/vmbus.c and
 * OpenVMM vm/devices/vmbus/vmbus_server/src/channels.rs where Linux is silent. Every
 * guest message is decoded from a private copy and validated; a bad one is reported through
 * notifier.protocolError and answered where the protocol has an error reply, otherwise ignored.
 */
import { HvError } from '../../hypervisor/hv-error.ts';
import * as C from '../protocol/channel-constants.ts';
import { decodeChannelMessage } from '../protocol/channel-decode.ts';
import { encodeChannelMessage } from '../protocol/channel-encode.ts';
import { guidToBytes } from '../protocol/guid.ts';
import type { ChannelMessage, InitiateContact, OpenChannel } from '../protocol/channel-messages.ts';
import { CHANNEL_CONNECTION_ID_BASE, type ChannelRecord } from './channel-record.ts';
import { GpadlTable, type GpadlProgress } from './gpadl-table.ts';
import type { ChannelOfferSpec, VmbusServerLimits, VmbusServerNotifier } from './server-types.ts';
import { checkServerState, type SavedChannel, type ServerSavedState } from './server-state.ts';

const T = C.ChannelMessageType;

const isU16 = (v: number | undefined) => v === undefined || (Number.isInteger(v) && v >= 0 && v <= 0xffff);

/** Checked when a VSP registers, so that sending the offer later can never fail. */
function checkOfferSpec(spec: ChannelOfferSpec): void {
  const bad = (why: string) => {
    throw new HvError('VMBUS_BAD_OFFER', `offer ${spec.interfaceType}/${spec.interfaceInstance}: ${why}`);
  };
  if (!guidToBytes(spec.interfaceType) || !guidToBytes(spec.interfaceInstance)) bad('malformed GUID');
  if (!isU16(spec.flags) || !isU16(spec.mmioMegabytes)) bad('flags and mmioMegabytes are u16');
  if ((spec.userDefined?.length ?? 0) > C.OFFER_USER_DEFINED_SIZE) bad('user_def is at most 120 bytes');
}

export type ConnectionPhase = 'disconnected' | 'connected';

export class VmbusServer {
  private phase: ConnectionPhase = 'disconnected';
  private version = 0;
  private targetVcpu = 0;
  private offersRequested = false;
  private readonly channels = new Map<number, ChannelRecord>();
  private gpadls: GpadlTable;

  constructor(
    private readonly notifier: VmbusServerNotifier,
    private readonly limits: VmbusServerLimits,
  ) {
    this.gpadls = new GpadlTable(limits);
  }

  // ---- state, for the VMWP and tests --------------------------------------------------------

  get connectionPhase(): ConnectionPhase {
    return this.phase;
  }
  get negotiatedVersion(): number {
    return this.version;
  }
  get gpadlCount(): number {
    return this.gpadls.size;
  }
  get pendingGpadlCount(): number {
    return this.gpadls.pendingCount;
  }
  channel(relid: number): Readonly<ChannelRecord> | undefined {
    return this.channels.get(relid);
  }
  gpadl(handle: number) {
    return this.gpadls.get(handle);
  }
  channelCount(): number {
    return this.channels.size;
  }
  get serverLimits(): Readonly<VmbusServerLimits> {
    return this.limits;
  }

  // ---- saved state ----------------------------------------------------------------------------

  /** Everything the server holds, as plain data (copies); see server-state.ts. */
  exportState(): ServerSavedState {
    return {
      connected: this.phase === 'connected',
      version: this.version,
      targetVcpu: this.targetVcpu,
      offersRequested: this.offersRequested,
      channels: [...this.channels.values()].map((ch) => ({
        relid: ch.relid,
        connectionId: ch.connectionId,
        state: ch.state,
        offeredToGuest: ch.offeredToGuest,
        ringGpadl: ch.ringGpadl,
        targetVp: ch.targetVp,
        openId: ch.openId,
        subChannelIndex: ch.subChannelIndex,
        primaryRelid: ch.primaryRelid,
        nextSubChannelIndex: ch.nextSubChannelIndex,
        interfaceType: ch.spec.interfaceType,
        interfaceInstance: ch.spec.interfaceInstance,
        downstreamPageOffset: ch.downstreamPageOffset,
        userData: ch.userData?.slice() ?? null,
      })),
      gpadls: this.gpadls.all().map((g) => ({ ...g, pages: [...g.pages] })),
    };
  }

  /**
   * Replaces the whole state with a saved one, after checkServerState (throws, changing nothing,
   * when it does not fit). `specOf` gives each channel's offer (its VSP's): the saved state keeps
   * only the GUIDs. Sends nothing and calls no notifier: the caller rebuilds the open channels.
   */
  importState(s: ServerSavedState, specOf: (channel: SavedChannel) => ChannelOfferSpec): void {
    checkServerState(s, this.limits);
    const specs = s.channels.map((c) => specOf(c));
    this.phase = s.connected ? 'connected' : 'disconnected';
    this.version = s.version;
    this.targetVcpu = s.targetVcpu;
    this.offersRequested = s.offersRequested;
    this.channels.clear();
    s.channels.forEach((c, i) => {
      this.channels.set(c.relid, {
        relid: c.relid,
        connectionId: c.connectionId,
        spec: specs[i]!,
        subChannelIndex: c.subChannelIndex,
        primaryRelid: c.primaryRelid,
        state: c.state,
        offeredToGuest: c.offeredToGuest,
        ringGpadl: c.ringGpadl,
        targetVp: c.targetVp,
        openId: c.openId,
        downstreamPageOffset: c.downstreamPageOffset,
        userData: c.userData?.slice() ?? null,
        nextSubChannelIndex: c.nextSubChannelIndex,
      });
    });
    this.gpadls.restore(s.gpadls);
  }

  // ---- VSP side -----------------------------------------------------------------------------

  /**
   * Registers a primary channel and returns its relid. Offered to the guest now if it has
   * already asked for offers (hot add), else at REQUESTOFFERS. Throws HvError for a malformed
   * spec or when all relids are in use (host configuration, not guest input).
   */
  offerChannel(spec: ChannelOfferSpec): number {
    checkOfferSpec(spec);
    return this.addChannel({ ...spec, userDefined: spec.userDefined?.slice() }, 0, 0).relid;
  }

  /** Offers sub-channel of an open primary (Linux vmbus_process_offer, sub-channels): same GUIDs, new relid. */
  offerSubchannel(primaryRelid: number): number {
    const primary = this.channels.get(primaryRelid);
    if (primary?.subChannelIndex !== 0 || primary.state !== 'open') {
      throw new HvError('VMBUS_NOT_OPEN', `sub-channels need an open primary channel (relid ${primaryRelid})`);
    }
    // The index is taken only once the channel exists: an offer refused for want of a relid leaves no gap.
    const relid = this.addChannel(primary.spec, primary.nextSubChannelIndex, primaryRelid).relid;
    primary.nextSubChannelIndex++;
    return relid;
  }

  /** Hot-remove (Linux vmbus_onoffer_rescind): closes the channel if open, then RESCIND_CHANNELOFFER. */
  rescindChannel(relid: number): void {
    const ch = this.channels.get(relid);
    if (!ch || ch.state === 'rescinded') return;
    if (ch.subChannelIndex === 0) {
      for (const sub of [...this.channels.values()]) if (sub.primaryRelid === relid && sub.relid !== relid) this.rescindChannel(sub.relid);
    }
    if (ch.state === 'open') this.close(ch);
    if (!ch.offeredToGuest) {
      this.release(ch);
      return;
    }
    ch.state = 'rescinded';
    this.send({ type: T.RescindChannelOffer, childRelid: relid });
    this.finishDeferredTeardowns();
  }

  /**
   * Takes back a primary's sub-channels: RESCIND_CHANNELOFFER for each (an open one is closed
   * first), and the next sub-channel offered is index 1 again. Hyper-V does this once the guest
   * closes the primary: Linux's vmbus_bus_suspend waits for its sub-channels to be destroyed so
   * that they do not "conflict with the new sub-channels that will be created in the resume
   * path". Returns the relids rescinded (each stays until the guest's RELID_RELEASED).
   */
  rescindSubchannels(primaryRelid: number): number[] {
    const primary = this.channels.get(primaryRelid);
    if (primary?.subChannelIndex !== 0) return [];
    const subs = [...this.channels.values()].filter((c) => c.subChannelIndex !== 0 && c.primaryRelid === primaryRelid && c.state !== 'rescinded');
    for (const sub of subs) this.rescindChannel(sub.relid);
    primary.nextSubChannelIndex = 1;
    return subs.map((c) => c.relid);
  }

  // ---- guest side ---------------------------------------------------------------------------

  /** One guest → host message: the SynIC payload and the connection id it was posted to. */
  handleGuestMessage(payload: Uint8Array, connectionId: number): void {
    const decoded = decodeChannelMessage(payload);
    if (!decoded.ok) {
      const e = decoded.error;
      return this.error('VMBUS_BAD_MESSAGE', `undecodable message type ${e.messageType}, ${e.length} bytes: ${e.code}`);
    }
    const m = decoded.message;
    if (m.type === T.InitiateContact) return this.initiateContact(m, connectionId);
    if (this.phase !== 'connected') return this.error('VMBUS_NOT_CONNECTED', `message ${m.type} before INITIATE_CONTACT`);
    if (connectionId !== C.VMBUS_MESSAGE_CONNECTION_ID) {
      return this.error('VMBUS_BAD_CONNECTION_ID', `message ${m.type} on connection ${connectionId}`);
    }
    this.dispatch(m);
  }

  private dispatch(m: ChannelMessage): void {
    switch (m.type) {
      case T.RequestOffers:
        return this.requestOffers();
      case T.GpadlHeader:
        return this.gpadlProgress(this.gpadls.header(m, this.usable(m.childRelid) !== undefined));
      case T.GpadlBody:
        return this.gpadlProgress(this.gpadls.body(m));
      case T.GpadlTeardown:
        return this.gpadlTeardown(m.childRelid, m.gpadl);
      case T.OpenChannel:
        return this.openChannel(m);
      case T.CloseChannel:
        return this.closeChannel(m.childRelid);
      case T.RelidReleased:
        return this.relidReleased(m.childRelid);
      case T.Unload:
        return this.unload();
      default:
        return this.error('VMBUS_UNEXPECTED_MESSAGE', `message type ${m.type} is not a guest → host message`);
    }
  }

  private initiateContact(m: InitiateContact, connectionId: number): void {
    const modern = m.version >= C.VmbusVersion.Win10V5;
    // Below 5.0 INITIATE_CONTACT uses the message connection; from 5.0 connection 4 (Linux VMBUS_MESSAGE_CONNECTION_ID_4).
    const expected = modern ? C.VMBUS_MESSAGE_CONNECTION_ID_4 : C.VMBUS_MESSAGE_CONNECTION_ID;
    const vp = m.targetVcpu < this.limits.vpCount ? m.targetVcpu : 0;
    if (this.phase === 'connected') this.reset(); // QEMU: INITIATE_CONTACT resets all VMBus state
    let reason = '';
    const known = C.SUPPORTED_VERSIONS.includes(m.version) && m.version <= (this.limits.maxVersion ?? C.VmbusVersion.Copper);
    if (!known) reason = `version 0x${m.version.toString(16)} not supported`;
    else if (connectionId !== expected) reason = `INITIATE_CONTACT for 0x${m.version.toString(16)} on connection ${connectionId}, expected ${expected}`;
    else if (m.targetVcpu >= this.limits.vpCount) reason = `target_vcpu ${m.targetVcpu} out of range`;
    else if (modern && (m.msgSint !== C.VMBUS_MESSAGE_SINT || m.msgVtl !== 0)) reason = `msg_sint ${m.msgSint} / msg_vtl ${m.msgVtl} not supported`;
    const copper = m.version === C.VmbusVersion.Copper;
    if (reason !== '') {
      // "Not supported" is the protocol's answer: a Linux guest then tries the next older version.
      if (known) this.error('VMBUS_CONTACT_REJECTED', reason);
      this.sendTo(vp, { type: T.VersionResponse, versionSupported: 0, connectionState: C.ConnectionState.Successful, msgConnId: 0, supportedFeatures: null });
      return;
    }
    this.phase = 'connected';
    this.version = m.version;
    this.targetVcpu = m.targetVcpu;
    // From 5.0 the reply names the connection for all later messages (OpenVMM returns its
    // message connection, 1); below 5.0 the guest ignores the field and we send 0.
    this.send({
      type: T.VersionResponse,
      versionSupported: 1,
      connectionState: C.ConnectionState.Successful,
      msgConnId: modern ? C.VMBUS_MESSAGE_CONNECTION_ID : 0,
      supportedFeatures: copper ? 0 : null, // no Copper features are offered
    });
  }

  private requestOffers(): void {
    if (this.offersRequested) return this.error('VMBUS_UNEXPECTED_MESSAGE', 'REQUESTOFFERS twice in one connection');
    this.offersRequested = true;
    // Primary channels before their sub-channels (Linux vmbus_process_offer needs the primary).
    const live = [...this.channels.values()].filter((c) => c.state !== 'rescinded');
    live.sort((a, b) => (a.subChannelIndex === 0 ? 0 : 1) - (b.subChannelIndex === 0 ? 0 : 1) || a.relid - b.relid);
    for (const ch of live) this.sendOffer(ch);
    this.send({ type: T.AllOffersDelivered });
  }

  private gpadlProgress(p: GpadlProgress): void {
    switch (p.kind) {
      case 'pending':
        return;
      case 'ignored':
        return this.error('VMBUS_GPADL_IGNORED', p.reason);
      case 'created':
        return this.send({ type: T.GpadlCreated, childRelid: p.gpadl.relid, gpadl: p.gpadl.handle, status: C.ChannelStatus.Success });
      case 'failed':
        this.error('VMBUS_GPADL_REJECTED', `GPADL ${p.handle}: ${p.reason}`);
        return this.send({ type: T.GpadlCreated, childRelid: p.relid, gpadl: p.handle, status: p.status });
    }
  }

  /**
   * GPADL_TEARDOWN. A GPADL that holds an open channel's rings is not freed under the VSP: the
   * TORNDOWN is deferred until the channel closes (by CLOSECHANNEL, rescind or unload), as
   * OpenVMM does, so the host never touches pages the guest believes released.
   */
  private gpadlTeardown(relid: number, handle: number): void {
    const g = this.gpadls.get(handle);
    if (!g || g.relid !== relid) return this.error('VMBUS_BAD_GPADL', `GPADL_TEARDOWN of unknown GPADL ${handle} on relid ${relid}`);
    if (g.teardownPending) return this.error('VMBUS_BAD_GPADL', `GPADL ${handle} is already being torn down`);
    if (g.usedByRelid !== 0) {
      g.teardownPending = true;
      return;
    }
    this.gpadls.remove(handle);
    this.send({ type: T.GpadlTorndown, gpadl: handle });
  }

  private openChannel(m: OpenChannel): void {
    const reject = (status: number, reason: string) => {
      this.error('VMBUS_OPEN_REJECTED', `OPENCHANNEL relid ${m.childRelid}: ${reason}`);
      this.send({ type: T.OpenChannelResult, childRelid: m.childRelid, openId: m.openId, status });
    };
    const ch = this.usable(m.childRelid);
    if (!ch) return reject(C.ChannelStatus.InvalidParameter, 'no such offered channel');
    if (ch.state === 'open') return reject(C.ChannelStatus.DeviceBusy, 'already open');
    const g = this.gpadls.get(m.ringGpadlHandle);
    if (!g?.complete || g.relid !== ch.relid || g.teardownPending)
      return reject(C.ChannelStatus.InvalidParameter, `ring GPADL ${m.ringGpadlHandle} not usable`);
    if (g.usedByRelid !== 0) return reject(C.ChannelStatus.InvalidParameter, `GPADL ${g.handle} already holds rings`);
    // Each ring needs its 4 KiB control page and at least one data page (Linux __vmbus_open).
    const down = m.downstreamRingPageOffset;
    if (down < 2 || g.pageCount - down < 2) return reject(C.ChannelStatus.InvalidParameter, `downstream page offset ${down} of ${g.pageCount}`);
    if (m.targetVp >= this.limits.vpCount) return reject(C.ChannelStatus.InvalidParameter, `target_vp ${m.targetVp}`);
    let status: number;
    try {
      status =
        this.notifier.channelOpened({
          relid: ch.relid,
          subChannelIndex: ch.subChannelIndex,
          primaryRelid: ch.primaryRelid || ch.relid,
          connectionId: ch.connectionId,
          targetVp: m.targetVp,
          openId: m.openId,
          gpadlHandle: g.handle,
          ringPages: [...g.pages],
          downstreamPageOffset: down,
          userData: m.userData.slice(),
        }) >>> 0;
    } catch (e) {
      this.error('VMBUS_VSP_FAILED', `channelOpened threw for relid ${ch.relid}: ${String(e)}`);
      status = C.ChannelStatus.Unsuccessful;
    }
    if (status === C.ChannelStatus.Success) {
      ch.state = 'open';
      ch.ringGpadl = g.handle;
      ch.targetVp = m.targetVp;
      ch.openId = m.openId;
      ch.downstreamPageOffset = down;
      ch.userData = m.userData.slice();
      g.usedByRelid = ch.relid;
    }
    this.send({ type: T.OpenChannelResult, childRelid: ch.relid, openId: m.openId, status });
  }

  private closeChannel(relid: number): void {
    const ch = this.channels.get(relid);
    // After a rescind the host closed the channel itself; Linux still sends CLOSECHANNEL.
    if (ch?.state === 'rescinded') return;
    if (ch?.state !== 'open') return this.error('VMBUS_BAD_RELID', `CLOSECHANNEL for relid ${relid} that is not open`);
    this.close(ch);
    this.finishDeferredTeardowns();
  }

  private relidReleased(relid: number): void {
    const ch = this.channels.get(relid);
    if (ch?.state !== 'rescinded') return this.error('VMBUS_BAD_RELID', `RELID_RELEASED for relid ${relid} that was not rescinded`);
    this.release(ch);
  }

  /** UNLOAD (Linux vmbus_initiate_unload): close everything, forget GPADLs, UNLOAD_RESPONSE. */
  private unload(): void {
    const vp = this.targetVcpu;
    this.reset();
    this.sendTo(vp, { type: T.UnloadResponse });
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** Back to the state before INITIATE_CONTACT; VSP registrations of primaries survive. */
  private reset(): void {
    for (const ch of [...this.channels.values()]) {
      if (ch.state === 'open') this.close(ch);
    }
    for (const ch of [...this.channels.values()]) {
      // Rescinded channels and the sub-channels of the last session are gone for good.
      if (ch.state === 'rescinded' || ch.subChannelIndex !== 0) this.release(ch);
      else {
        ch.offeredToGuest = false;
        ch.nextSubChannelIndex = 1;
      }
    }
    this.gpadls.removeAll();
    this.phase = 'disconnected';
    this.version = 0;
    this.offersRequested = false;
  }

  private addChannel(spec: ChannelOfferSpec, subChannelIndex: number, primaryRelid: number): ChannelRecord {
    let relid = 0;
    for (let r = C.VMBUS_FIRST_RELID; r <= Math.min(this.limits.maxChannels, C.VMBUS_MAX_RELID); r++) {
      if (!this.channels.has(r)) {
        relid = r;
        break;
      }
    }
    if (relid === 0) throw new HvError('VMBUS_NO_RELID', `all ${this.limits.maxChannels} relids in use`);
    const ch: ChannelRecord = {
      relid,
      connectionId: CHANNEL_CONNECTION_ID_BASE + relid,
      spec,
      subChannelIndex,
      primaryRelid,
      state: 'offered',
      offeredToGuest: false,
      ringGpadl: 0,
      targetVp: 0,
      openId: 0,
      downstreamPageOffset: 0,
      userData: null,
      nextSubChannelIndex: 1,
    };
    this.channels.set(relid, ch);
    if (this.offersRequested) this.sendOffer(ch);
    return ch;
  }

  private sendOffer(ch: ChannelRecord): void {
    ch.offeredToGuest = true;
    // No monitor pages: monitor_allocated 0 and is_dedicated_interrupt 1, as QEMU offers, so
    // the guest always signals with HvCallSignalEvent on connection_id (Linux vmbus_set_event).
    this.send({
      type: T.OfferChannel,
      ifType: ch.spec.interfaceType,
      ifInstance: ch.spec.interfaceInstance,
      flags: ch.spec.flags ?? 0,
      mmioMegabytes: ch.spec.mmioMegabytes ?? 0,
      userDefined: ch.spec.userDefined ?? new Uint8Array(0),
      subChannelIndex: ch.subChannelIndex,
      mmioMegabytesOptional: 0,
      childRelid: ch.relid,
      monitorId: 0,
      monitorAllocated: false,
      isDedicatedInterrupt: true,
      connectionId: ch.connectionId,
    });
  }

  private close(ch: ChannelRecord): void {
    const g = this.gpadls.get(ch.ringGpadl);
    if (g) g.usedByRelid = 0;
    ch.state = 'offered';
    ch.ringGpadl = 0;
    ch.downstreamPageOffset = 0;
    ch.userData = null;
    this.notifier.channelClosed(ch.relid);
  }

  private release(ch: ChannelRecord): void {
    if (ch.state === 'open') this.close(ch);
    this.channels.delete(ch.relid);
    this.gpadls.removeAll(ch.relid); // what the guest did not tear down dies with the relid
    this.notifier.channelReleased?.(ch.relid);
  }

  /** Sends the deferred GPADL_TORNDOWNs of GPADLs whose channel has closed. */
  private finishDeferredTeardowns(): void {
    for (const g of this.gpadls.all()) {
      if (g.teardownPending && g.usedByRelid === 0) {
        this.gpadls.remove(g.handle);
        this.send({ type: T.GpadlTorndown, gpadl: g.handle });
      }
    }
  }

  /** A channel the guest may use: offered to it in this connection and not rescinded. */
  private usable(relid: number): ChannelRecord | undefined {
    const ch = this.channels.get(relid);
    return ch?.offeredToGuest && ch.state !== 'rescinded' ? ch : undefined;
  }

  private send(m: ChannelMessage): void {
    this.sendTo(this.targetVcpu, m);
  }

  private sendTo(vp: number, m: ChannelMessage): void {
    this.notifier.sendToGuest(encodeChannelMessage(m), vp);
  }

  private error(code: string, message: string): void {
    this.notifier.protocolError(new HvError(code, message));
  }
}
