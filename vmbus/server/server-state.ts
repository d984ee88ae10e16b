/**
 * The VMBus server's state as a saved state carries it, and the checks it must pass before a
 * server takes it. A saved state is input from a file: every field is checked against this
 * build's protocol and the partition's limits, and against the other fields (an open channel's
 * ring GPADL exists, is complete and names it; a GPADL's relid exists; counts within limits), so
 * that a restored server is one the guest's own messages could have produced. The first problem
 * found is thrown as HvError VMBUS_BAD_SAVED_STATE naming the field; nothing has been applied.
 */
import { HvError } from '../../hypervisor/hv-error.ts';
import * as C from '../protocol/channel-constants.ts';
import { guidToBytes } from '../protocol/guid.ts';
import { CHANNEL_CONNECTION_ID_BASE, type ChannelState } from './channel-record.ts';
import type { Gpadl } from './gpadl-table.ts';
import type { VmbusServerLimits } from './server-types.ts';

/** One channel record; the offer's GUIDs are kept so that a restore can match its VSP. */
export interface SavedChannel {
  relid: number;
  connectionId: number;
  state: ChannelState;
  offeredToGuest: boolean;
  ringGpadl: number;
  targetVp: number;
  openId: number;
  subChannelIndex: number;
  primaryRelid: number;
  nextSubChannelIndex: number;
  interfaceType: string;
  interfaceInstance: string;
  /** Open channels only (0 and null otherwise). */
  downstreamPageOffset: number;
  userData: Uint8Array | null;
}

export interface ServerSavedState {
  connected: boolean;
  version: number;
  targetVcpu: number;
  offersRequested: boolean;
  /** In the server's own order (the order rescinds of sub-channels go out in). */
  channels: SavedChannel[];
  gpadls: Gpadl[];
}

export const CHANNEL_STATES: readonly ChannelState[] = ['offered', 'open', 'rescinded'];

export function savedStateError(what: string): HvError {
  return new HvError('VMBUS_BAD_SAVED_STATE', `VMBus saved state: ${what}`);
}

const u32 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const u16 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffff;

/** Throws VMBUS_BAD_SAVED_STATE for the first field that does not fit; changes nothing. */
export function checkServerState(s: ServerSavedState, limits: VmbusServerLimits): void {
  if (s.connected) {
    const maxVersion = limits.maxVersion ?? C.VmbusVersion.Copper;
    if (!C.SUPPORTED_VERSIONS.includes(s.version) || s.version > maxVersion)
      throw savedStateError(`negotiated version 0x${s.version.toString(16)} is not one this host accepts`);
    if (!u32(s.targetVcpu) || s.targetVcpu >= limits.vpCount)
      throw savedStateError(`target VCPU ${s.targetVcpu} is not below the partition's ${limits.vpCount} VPs`);
  } else {
    if (s.version !== 0 || s.targetVcpu !== 0 || s.offersRequested)
      throw savedStateError('a disconnected server with a version, target VCPU or offers requested');
    if (s.gpadls.length > 0) throw savedStateError(`${s.gpadls.length} GPADLs while disconnected`);
  }
  const maxRelid = Math.min(limits.maxChannels, C.VMBUS_MAX_RELID);
  if (s.channels.length > maxRelid) throw savedStateError(`${s.channels.length} channels, more than the ${maxRelid} relids`);
  const byRelid = new Map<number, SavedChannel>();
  for (const ch of s.channels) {
    const r = ch.relid;
    if (!Number.isInteger(r) || r < C.VMBUS_FIRST_RELID || r > maxRelid) throw savedStateError(`channel relid ${r} outside 1..${maxRelid}`);
    if (byRelid.has(r)) throw savedStateError(`channel relid ${r} twice`);
    byRelid.set(r, ch);
    if (ch.connectionId !== CHANNEL_CONNECTION_ID_BASE + r)
      throw savedStateError(`relid ${r}: connection id ${ch.connectionId}, expected ${CHANNEL_CONNECTION_ID_BASE + r}`);
    if (!CHANNEL_STATES.includes(ch.state)) throw savedStateError(`relid ${r}: state ${String(ch.state)}`);
    if (!guidToBytes(ch.interfaceType) || !guidToBytes(ch.interfaceInstance)) throw savedStateError(`relid ${r}: malformed interface GUID`);
    if (!u16(ch.subChannelIndex) || !u16(ch.nextSubChannelIndex) || ch.nextSubChannelIndex < 1)
      throw savedStateError(`relid ${r}: sub-channel index out of range`);
    if (!u32(ch.openId) || !u32(ch.ringGpadl) || !u32(ch.targetVp)) throw savedStateError(`relid ${r}: open fields out of range`);
    // Once the guest asked for offers every channel is offered at once (hot add too); a reset forgets rescinded ones.
    if (ch.offeredToGuest !== s.offersRequested)
      throw savedStateError(`relid ${r}: offered to the guest ${ch.offeredToGuest} while offers requested is ${s.offersRequested}`);
    if (ch.state === 'rescinded' && !ch.offeredToGuest) throw savedStateError(`relid ${r}: rescinded but never offered`);
    if (ch.state === 'open') {
      if (ch.targetVp >= limits.vpCount) throw savedStateError(`relid ${r}: target VP ${ch.targetVp} is not below the partition's ${limits.vpCount} VPs`);
      if (ch.userData === null || ch.userData.length !== C.OPEN_CHANNEL_USERDATA_SIZE)
        throw savedStateError(`relid ${r}: open without its ${C.OPEN_CHANNEL_USERDATA_SIZE} bytes of userdata`);
    } else if (ch.ringGpadl !== 0 || ch.downstreamPageOffset !== 0 || ch.userData !== null) {
      throw savedStateError(`relid ${r}: ring fields on a channel that is not open`);
    }
  }
  for (const ch of s.channels) {
    const r = ch.relid;
    if (ch.subChannelIndex === 0) {
      if (ch.primaryRelid !== 0) throw savedStateError(`relid ${r}: primary channel naming primary ${ch.primaryRelid}`);
      continue;
    }
    const primary = byRelid.get(ch.primaryRelid);
    // A rescinded sub-channel may outlive its primary's relid (the guest released that first).
    if (!primary) {
      if (ch.state !== 'rescinded') throw savedStateError(`relid ${r}: sub-channel of relid ${ch.primaryRelid}, which does not exist`);
      continue;
    }
    if (primary.subChannelIndex !== 0) throw savedStateError(`relid ${r}: sub-channel of relid ${ch.primaryRelid}, itself a sub-channel`);
    if (ch.state !== 'rescinded' && (primary.interfaceType !== ch.interfaceType || primary.interfaceInstance !== ch.interfaceInstance)) {
      throw savedStateError(`relid ${r}: sub-channel GUIDs differ from its primary's`);
    }
  }
  checkGpadls(s, limits, byRelid);
}

function checkGpadls(s: ServerSavedState, limits: VmbusServerLimits, channels: Map<number, SavedChannel>): void {
  if (s.gpadls.length > limits.maxGpadls) throw savedStateError(`${s.gpadls.length} GPADLs, more than the limit ${limits.maxGpadls}`);
  const byHandle = new Map<number, Gpadl>();
  let pending = 0;
  for (const g of s.gpadls) {
    const h = g.handle;
    if (!u32(h) || h === 0) throw savedStateError(`GPADL handle ${h}`);
    if (byHandle.has(h)) throw savedStateError(`GPADL ${h} twice`);
    byHandle.set(h, g);
    if (!channels.has(g.relid)) throw savedStateError(`GPADL ${h} of relid ${g.relid}, which does not exist`);
    if (!Number.isInteger(g.pageCount) || g.pageCount < 1 || g.pageCount > limits.maxPagesPerGpadl)
      throw savedStateError(`GPADL ${h}: ${g.pageCount} pages (limit ${limits.maxPagesPerGpadl})`);
    if (g.pages.length > g.pageCount) throw savedStateError(`GPADL ${h}: ${g.pages.length} PFNs for ${g.pageCount} pages`);
    for (const pfn of g.pages) {
      if (!Number.isInteger(pfn) || pfn < 0 || pfn >= limits.guestPageCount)
        throw savedStateError(`GPADL ${h}: PFN ${pfn} outside guest memory (${limits.guestPageCount} pages)`);
    }
    if (g.complete !== (g.pages.length === g.pageCount))
      throw savedStateError(`GPADL ${h}: complete ${g.complete} with ${g.pages.length} of ${g.pageCount} PFNs`);
    if (g.awaitingBody === g.complete) throw savedStateError(`GPADL ${h}: awaiting body ${g.awaitingBody} while complete ${g.complete}`);
    if (g.awaitingBody) pending++;
    if (g.usedByRelid !== 0) {
      const ch = channels.get(g.usedByRelid);
      if (ch?.state !== 'open' || ch.ringGpadl !== h || g.relid !== ch.relid)
        throw savedStateError(`GPADL ${h}: holds the rings of relid ${g.usedByRelid}, which is not open on it`);
    } else if (g.teardownPending) throw savedStateError(`GPADL ${h}: teardown pending but no channel uses it`);
  }
  if (pending > limits.maxPendingGpadls) throw savedStateError(`${pending} GPADLs awaiting a body, more than the limit ${limits.maxPendingGpadls}`);
  for (const ch of channels.values()) {
    if (ch.state !== 'open') continue;
    const g = byHandle.get(ch.ringGpadl);
    if (!g || g.usedByRelid !== ch.relid || !g.complete)
      throw savedStateError(`relid ${ch.relid}: ring GPADL ${ch.ringGpadl} is not a complete GPADL held by it`);
    const down = ch.downstreamPageOffset;
    if (!Number.isInteger(down) || down < 2 || g.pageCount - down < 2)
      throw savedStateError(`relid ${ch.relid}: downstream page offset ${down} of ${g.pageCount}`);
  }
}
