/**
 * The checks of a VMBus saved state against the host it is to be restored into, before anything
 * is applied: the VSPs registered now (built from the VM's configuration, in the same order as at
 * boot) must be the saved ones with the same interface and instance GUIDs; every channel that is
 * not rescinded needs its VSP; the outbox fits and holds only VMBus messages for existing VPs;
 * every open channel's rings can be rebuilt from its GPADL inside guest memory. The result is the
 * plan VmbusHost.restoreState applies; the first problem is thrown as VMBUS_BAD_SAVED_STATE.
 */
import type { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { VMBUS_MAX_MESSAGE_SIZE } from '../protocol/channel-constants.ts';
import { decodeChannelMessage } from '../protocol/channel-decode.ts';
import { checkServerState, savedStateError, type SavedChannel } from '../server/server-state.ts';
import type { OpenedChannel, VmbusServerLimits } from '../server/server-types.ts';
import { buildChannelRings, type ChannelRings } from './channel-rings.ts';
import type { VmbusSavedState } from './vmbus-saved-state.ts';
import type { Vsp } from './vsp.ts';

export interface OpenChannelPlan {
  vsp: Vsp;
  open: OpenedChannel;
  rings: ChannelRings;
  /** The VSP's own state of the channel, when the save had one. */
  vspState: Uint8Array | undefined;
}

export interface RestorePlan {
  /** Primary relid → VSP. */
  bindings: Map<number, Vsp>;
  resetting: Set<number>;
  /** Primaries first, then sub-channels (a sub-channel's VSP state may lean on its primary's). */
  opens: OpenChannelPlan[];
}

export function planRestore(s: VmbusSavedState, registered: readonly Vsp[], limits: VmbusServerLimits, outboxCapacity: number, mem: GuestMemory): RestorePlan {
  checkServerState(s.server, limits);
  if (s.vsps.length !== registered.length) {
    throw savedStateError(`the saved VM had ${s.vsps.length} VMBus devices, this configuration has ${registered.length}`);
  }
  const records = new Map(s.server.channels.map((c) => [c.relid, c]));
  const bindings = new Map<number, Vsp>();
  const resetting = new Set<number>();
  s.vsps.forEach((b, i) => {
    const vsp = registered[i]!;
    const what = `VMBus device ${i} (${vsp.offer.interfaceType} instance ${vsp.offer.interfaceInstance})`;
    if (b.interfaceType !== vsp.offer.interfaceType || b.interfaceInstance !== vsp.offer.interfaceInstance) {
      throw savedStateError(`${what}: the saved VM had ${b.interfaceType} instance ${b.interfaceInstance} there`);
    }
    if (b.relid === 0) {
      if (b.resetting) throw savedStateError(`${what}: resetting without a channel`);
      return;
    }
    const ch = records.get(b.relid);
    if (ch?.subChannelIndex !== 0) throw savedStateError(`${what}: bound to relid ${b.relid}, which is no primary channel`);
    if (ch.interfaceType !== b.interfaceType || ch.interfaceInstance !== b.interfaceInstance)
      throw savedStateError(`${what}: relid ${b.relid} offers other GUIDs`);
    if (bindings.has(b.relid)) throw savedStateError(`relid ${b.relid} bound to two devices`);
    bindings.set(b.relid, vsp);
    if (b.resetting) {
      if (ch.state !== 'rescinded') throw savedStateError(`${what}: resetting, but relid ${b.relid} is ${ch.state}`);
      resetting.add(b.relid);
    }
  });
  const vspOf = (c: SavedChannel) => bindings.get(c.subChannelIndex === 0 ? c.relid : c.primaryRelid);
  for (const c of s.server.channels) {
    if (c.state !== 'rescinded' && !vspOf(c)) throw savedStateError(`relid ${c.relid} (${c.interfaceType}) has no VMBus device in this configuration`);
  }
  checkOutbox(s, limits, outboxCapacity);
  const vspStates = new Map<number, Uint8Array>();
  for (const cs of s.channelStates) {
    const c = records.get(cs.relid);
    if (c?.state !== 'open') throw savedStateError(`device state for relid ${cs.relid}, which is not open`);
    if (vspStates.has(cs.relid)) throw savedStateError(`device state for relid ${cs.relid} twice`);
    vspStates.set(cs.relid, cs.state);
  }
  const gpadls = new Map(s.server.gpadls.map((g) => [g.handle, g]));
  const opens: OpenChannelPlan[] = [];
  const openRecords = s.server.channels.filter((c) => c.state === 'open');
  openRecords.sort((a, b) => (a.subChannelIndex === 0 ? 0 : 1) - (b.subChannelIndex === 0 ? 0 : 1) || a.relid - b.relid);
  for (const c of openRecords) {
    const vsp = vspOf(c)!;
    if (!vsp.restoreChannel) throw savedStateError(`relid ${c.relid}: the device ${vsp.offer.interfaceType} cannot restore an open channel`);
    const g = gpadls.get(c.ringGpadl)!;
    const open: OpenedChannel = {
      relid: c.relid,
      subChannelIndex: c.subChannelIndex,
      primaryRelid: c.primaryRelid || c.relid,
      connectionId: c.connectionId,
      targetVp: c.targetVp,
      openId: c.openId,
      gpadlHandle: g.handle,
      ringPages: [...g.pages],
      downstreamPageOffset: c.downstreamPageOffset,
      userData: c.userData!.slice(),
    };
    const built = buildChannelRings(mem, open, true);
    if (!built.ok) throw savedStateError(`relid ${c.relid}: ${built.reason}`);
    opens.push({ vsp, open, rings: built.rings, vspState: vspStates.get(c.relid) });
  }
  return { bindings, resetting, opens };
}

function checkOutbox(s: VmbusSavedState, limits: VmbusServerLimits, capacity: number): void {
  if (s.outbox.length > capacity) throw savedStateError(`${s.outbox.length} queued messages, more than the outbox's ${capacity}`);
  for (const [i, m] of s.outbox.entries()) {
    if (m.vp >= limits.vpCount) throw savedStateError(`queued message ${i} for VP ${m.vp}, not below the partition's ${limits.vpCount} VPs`);
    if (m.message.length > VMBUS_MAX_MESSAGE_SIZE) throw savedStateError(`queued message ${i}: ${m.message.length} bytes`);
    const d = decodeChannelMessage(m.message);
    if (!d.ok) throw savedStateError(`queued message ${i} is not a VMBus message (${d.error.code})`);
  }
}
