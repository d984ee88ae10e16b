/**
 * The GPADLs of one guest connection. A GPADL arrives as GPADL_HEADER plus as many GPADL_BODY
 * messages as its page count needs (Linux create_gpadl_header); the host appends PFNs in arrival
 * order until it has the count implied by the header (Linux vmbus_establish_gpadl). Only single-range,
 * page-aligned GPADLs are accepted (what QEMU accepts; all Linux and Windows send).
 */
import { ChannelStatus, GPADL_RANGE_FIXED_SIZE } from '../protocol/channel-constants.ts';
import type { GpadlBody, GpadlHeader } from '../protocol/channel-messages.ts';
import type { VmbusServerLimits } from './server-types.ts';

const PAGE_SIZE = 4096;

export interface Gpadl {
  handle: number;
  relid: number;
  pageCount: number;
  pages: number[];
  complete: boolean;
  /** Relid of the open channel whose rings live here, or 0. */
  usedByRelid: number;
  /** GPADL_TEARDOWN arrived while the rings were in use: TORNDOWN waits for the close. */
  teardownPending: boolean;
  /** Counted in the pending bound until its last GPADL_BODY arrives. */
  awaitingBody: boolean;
}

/** Outcome of feeding a header or body: still accumulating, complete, or failed with a status. */
export type GpadlProgress =
  | { kind: 'pending' }
  | { kind: 'created'; gpadl: Gpadl }
  | { kind: 'failed'; relid: number; handle: number; status: number; reason: string }
  | { kind: 'ignored'; reason: string };

export class GpadlTable {
  private readonly byHandle = new Map<number, Gpadl>();
  private pending = 0;

  constructor(private readonly limits: VmbusServerLimits) {}

  get size(): number {
    return this.byHandle.size;
  }
  get pendingCount(): number {
    return this.pending;
  }

  get(handle: number): Gpadl | undefined {
    return this.byHandle.get(handle);
  }

  all(): Gpadl[] {
    return [...this.byHandle.values()];
  }

  /** Replaces the table with GPADLs of a saved state (already checked against the limits). */
  restore(gpadls: readonly Gpadl[]): void {
    this.byHandle.clear();
    this.pending = 0;
    for (const g of gpadls) {
      this.byHandle.set(g.handle, { ...g, pages: [...g.pages] });
      if (g.awaitingBody) this.pending++;
    }
  }

  /** Starts a GPADL from its header; `relidValid` says whether the header's relid is usable. */
  header(m: GpadlHeader, relidValid: boolean): GpadlProgress {
    const fail = (status: number, reason: string): GpadlProgress => ({ kind: 'failed', relid: m.childRelid, handle: m.gpadl, status, reason });
    if (this.byHandle.has(m.gpadl)) return { kind: 'ignored', reason: `GPADL handle ${m.gpadl} already exists` };
    if (!relidValid) return fail(ChannelStatus.InvalidParameter, `GPADL for unknown relid ${m.childRelid}`);
    if (m.gpadl === 0) return fail(ChannelStatus.InvalidParameter, 'GPADL handle 0');
    if (m.rangeCount !== 1) return fail(ChannelStatus.InvalidParameter, `rangecount ${m.rangeCount}, only 1 is supported`);
    if (m.byteOffset !== 0 || m.byteCount === 0 || m.byteCount % PAGE_SIZE !== 0) {
      return fail(ChannelStatus.InvalidParameter, `range not page-aligned (offset ${m.byteOffset}, count ${m.byteCount})`);
    }
    const pageCount = m.byteCount / PAGE_SIZE;
    if (m.rangeBufLen !== GPADL_RANGE_FIXED_SIZE + 8 * pageCount) {
      return fail(ChannelStatus.InvalidParameter, `range_buflen ${m.rangeBufLen} does not match ${pageCount} pages`);
    }
    if (pageCount > this.limits.maxPagesPerGpadl) {
      return fail(ChannelStatus.InsufficientResources, `${pageCount} pages exceed the limit ${this.limits.maxPagesPerGpadl}`);
    }
    if (m.pfns.length > pageCount) return fail(ChannelStatus.InvalidParameter, 'more PFNs than the range spans');
    if (this.byHandle.size >= this.limits.maxGpadls) return fail(ChannelStatus.InsufficientResources, 'too many GPADLs');
    const needsBody = m.pfns.length < pageCount;
    if (needsBody && this.pending >= this.limits.maxPendingGpadls) {
      return fail(ChannelStatus.InsufficientResources, 'too many GPADLs awaiting body messages');
    }
    const gpadl: Gpadl = {
      handle: m.gpadl,
      relid: m.childRelid,
      pageCount,
      pages: [],
      complete: false,
      usedByRelid: 0,
      teardownPending: false,
      awaitingBody: needsBody,
    };
    this.byHandle.set(m.gpadl, gpadl);
    if (needsBody) this.pending++;
    return this.append(gpadl, m.pfns);
  }

  body(m: GpadlBody): GpadlProgress {
    const gpadl = this.byHandle.get(m.gpadl);
    if (!gpadl || gpadl.complete) return { kind: 'ignored', reason: `GPADL_BODY for no GPADL in progress (${m.gpadl})` };
    if (gpadl.pages.length + m.pfns.length > gpadl.pageCount) {
      this.remove(gpadl.handle);
      return {
        kind: 'failed',
        relid: gpadl.relid,
        handle: gpadl.handle,
        status: ChannelStatus.InvalidParameter,
        reason: 'GPADL_BODY carries more PFNs than the header announced',
      };
    }
    return this.append(gpadl, m.pfns);
  }

  private append(gpadl: Gpadl, pfns: bigint[]): GpadlProgress {
    for (const pfn of pfns) {
      if (pfn >= BigInt(this.limits.guestPageCount)) {
        this.remove(gpadl.handle);
        return {
          kind: 'failed',
          relid: gpadl.relid,
          handle: gpadl.handle,
          status: ChannelStatus.InvalidParameter,
          reason: `PFN 0x${pfn.toString(16)} outside guest memory`,
        };
      }
      gpadl.pages.push(Number(pfn));
    }
    if (gpadl.pages.length < gpadl.pageCount) return { kind: 'pending' };
    gpadl.complete = true;
    if (gpadl.awaitingBody) {
      gpadl.awaitingBody = false;
      this.pending--;
    }
    return { kind: 'created', gpadl };
  }

  /** Removes a GPADL (complete or not), keeping the pending count right. */
  remove(handle: number): Gpadl | undefined {
    const gpadl = this.byHandle.get(handle);
    if (!gpadl) return undefined;
    this.byHandle.delete(handle);
    if (gpadl.awaitingBody) this.pending--;
    return gpadl;
  }

  /** Forgets every GPADL of a channel (relid released) or of the whole connection (relid -1). */
  removeAll(relid = -1): Gpadl[] {
    const removed = this.all().filter((g) => relid === -1 || g.relid === relid);
    for (const g of removed) this.remove(g.handle);
    return removed;
  }
}
