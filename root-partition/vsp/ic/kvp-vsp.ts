/**
 * KVP exchange, host side. The host pushes items into the guest's External pool (host → guest
 * items) and AutoExternal pool (host intrinsic items), reads any pool by GET or ENUMERATE (index
 * 0, 1, … until NO_MORE_ITEMS), and deletes items it owns (Linux hv_kvp.c,
 * tools/hv/hv_kvp_daemon.c). The guest's Guest and Auto (guest intrinsic: host name, OS name…) pools are what
 * Msvm_KvpExchangeComponent publishes as GuestExchangeItems and GuestIntrinsicExchangeItems.
 */
import { IcStatus } from './ic-protocol.ts';
import { KVP_SERVICE } from './ic-services.ts';
import { IcVsp, type IcVspOptions } from './ic-vsp.ts';
import { icStateError, type IcSavedState } from './ic-saved-state.ts';
import { decodeKvpItem, encodeKvpRequest, KvpOperation, KvpPool, type KvpItem } from './kvp-protocol.ts';

export type KvpResult = { ok: true } | { ok: false; status?: number; reason: string };

/** Enumeration stops here even if the guest keeps answering (a hostile guest could answer forever). */
export const KVP_MAX_ENUMERATE = 1024;

export class KvpVsp extends IcVsp {
  /** Items read by the last enumeration of each pool. */
  private readonly guestPools = new Map<number, Map<string, string>>();

  constructor(options: IcVspOptions = {}) {
    super(KVP_SERVICE, options);
  }

  protected negotiatedHook(): void {}

  protected override saveService(): Partial<IcSavedState> {
    return { kvp: { pools: [...this.guestPools].map(([pool, items]) => ({ pool, items: [...items].map(([key, value]) => ({ key, value })) })) } };
  }

  protected override restoreService(s: IcSavedState): () => void {
    if (!s.kvp) throw icStateError(this.spec.name, 'no KVP state');
    const pools = s.kvp.pools;
    return () => {
      this.guestPools.clear();
      for (const p of pools) this.guestPools.set(p.pool, new Map(p.items.map((i) => [i.key, i.value])));
    };
  }

  /** SET: writes one item into a guest pool (External or AutoExternal for host items). */
  async set(pool: number, key: string, value: string): Promise<KvpResult> {
    return this.simple(encodeKvpRequest({ operation: KvpOperation.Set, pool, key, value }));
  }

  /** DELETE: removes one item from a guest pool. */
  async delete(pool: number, key: string): Promise<KvpResult> {
    return this.simple(encodeKvpRequest({ operation: KvpOperation.Delete, pool, key }));
  }

  /**
   * GET: one item's value, or null when the guest has no such key (or refused). Linux answers a
   * GET of every key it holds with an empty value: hv_kvp.c's kvp_send_key passes the daemon only
   * the key (value_size stays 0, so hv_kvp_daemon's kvp_get_value copies no byte of the value),
   * and kvp_respond_to_host reads the daemon's value through body.kvp_enum_data, 4 bytes past
   * where a GET's value is. Its ENUMERATE carries the whole item, so an empty value is looked
   * up there before it is believed.
   */
  async get(pool: number, key: string): Promise<string | null> {
    const r = await this.request(encodeKvpRequest({ operation: KvpOperation.Get, pool, key }));
    if (r.kind !== 'reply' || r.status !== IcStatus.Ok) return null;
    const item = decodeKvpItem(r.body, KvpOperation.Get);
    if ('error' in item) {
      this.report('IC_KVP_INVALID', item.error);
      return null;
    }
    if (item.value !== '') return item.value;
    return (await this.find(pool, key)) ?? item.value;
  }

  /** The value of `key` in the guest's enumeration of `pool` (stops at the key), or null. */
  private async find(pool: number, key: string): Promise<string | null> {
    for (let index = 0; index < KVP_MAX_ENUMERATE; index++) {
      const r = await this.request(encodeKvpRequest({ operation: KvpOperation.Enumerate, pool, index }));
      if (r.kind !== 'reply' || r.status !== IcStatus.Ok) return null;
      const item = decodeKvpItem(r.body, KvpOperation.Enumerate);
      if ('error' in item) {
        this.report('IC_KVP_INVALID', item.error);
        return null;
      }
      if (item.key === key) return item.value;
    }
    return null;
  }

  /** ENUMERATE a pool from index 0 until NO_MORE_ITEMS; the result is also kept for `items(pool)`. */
  async enumerate(pool: number): Promise<KvpItem[] | null> {
    const items: KvpItem[] = [];
    for (let index = 0; index < KVP_MAX_ENUMERATE; index++) {
      const r = await this.request(encodeKvpRequest({ operation: KvpOperation.Enumerate, pool, index }));
      if (r.kind !== 'reply') return null;
      if (r.status === IcStatus.NoMoreItems) break;
      if (r.status !== IcStatus.Ok) return null;
      const item = decodeKvpItem(r.body, KvpOperation.Enumerate);
      if ('error' in item) {
        this.report('IC_KVP_INVALID', item.error);
        return null;
      }
      items.push(item);
    }
    this.guestPools.set(pool, new Map(items.map((i) => [i.key, i.value])));
    return items;
  }

  /** What the last enumeration of `pool` returned (empty before one). */
  items(pool: number = KvpPool.Guest): Map<string, string> {
    return new Map(this.guestPools.get(pool) ?? []);
  }

  private async simple(body: Uint8Array): Promise<KvpResult> {
    const r = await this.request(body);
    if (r.kind === 'timeout') return { ok: false, reason: 'no answer' };
    if (r.kind === 'unavailable') return { ok: false, reason: r.reason };
    return r.status === IcStatus.Ok ? { ok: true } : { ok: false, status: r.status, reason: `guest answered 0x${r.status.toString(16)}` };
  }
}
