/**
 * The management protocol on the VMMS socket: `cim.*` requests in the socket's JSON-lines form
 * (client-server.ts), values in the JSON form of management/client/wire.ts. `cim.watch` starts a
 * subscription whose events the service pushes on the same connection as
 * `{ "event": { "subscription": n, "eventClass", "time", "target", "previous" } }` lines, as
 * each change happens; closing the connection ends its subscriptions.
 */
import type { Socket } from 'node:net';
import { CimError } from '../management/cim/errors.ts';
import type { CimObjectManager } from '../management/cim/object-manager.ts';
import { InstanceEventClass } from '../management/cim/provider.ts';
import { decodeParam, decodePath, encodeInstance, encodePath, encodeValue, type JsonValue, type WirePath } from '../management/client/wire.ts';
import { executeWql, subscribeWql } from '../management/wql/query-executor.ts';

export const CIM_SOCKET_METHODS = ['cim.enumerate', 'cim.get', 'cim.query', 'cim.invoke', 'cim.watch', 'cim.unwatch'] as const;
/** Subscriptions one connection may hold: a client cannot make the service fan out unboundedly. */
const MAX_WATCHES_PER_CONNECTION = 64;

function requestError(message: string): Error {
  return Object.assign(new Error(message), { code: 'CIM_ERR_INVALID_PARAMETER' });
}

function text(p: Record<string, unknown>, name: string): string {
  if (typeof p[name] !== 'string') throw requestError(`params.${name} must be a string`);
  return p[name] as string;
}

function path(p: Record<string, unknown>): WirePath {
  const v = p.path as WirePath | undefined;
  if (!v || typeof v.className !== 'string' || !Array.isArray(v.keys)) throw requestError('params.path must be { className, keys: [{ name, value }] }');
  return v;
}

export class CimSocketEndpoint {
  private readonly watches = new WeakMap<Socket, Map<number, () => void>>();
  private nextWatch = 1;

  constructor(private readonly manager: CimObjectManager) {}

  handles(method: string): boolean {
    return (CIM_SOCKET_METHODS as readonly string[]).includes(method);
  }

  async call(method: string, p: Record<string, unknown>, socket: Socket): Promise<unknown> {
    try {
      return await this.dispatch(method, p, socket);
    } catch (e) {
      // The CIM status name is the error code clients see, as wbemcli shows it.
      if (e instanceof CimError) throw Object.assign(new Error(e.message), { code: e.statusName });
      throw e;
    }
  }

  private async dispatch(method: string, p: Record<string, unknown>, socket: Socket): Promise<unknown> {
    const m = this.manager;
    switch (method) {
      case 'cim.enumerate':
        return m.enumerateInstances(text(p, 'className')).map((i) => ({ path: encodePath(m.pathOf(i)), instance: encodeInstance(i) }));
      case 'cim.get':
        return encodeInstance(m.getInstance(decodePath(path(p))));
      case 'cim.query': {
        const r = executeWql(m, text(p, 'wql'));
        if (r.kind === 'classes') return { classes: r.classes.map((c) => c.name) };
        return { rows: r.rows.map((row) => ({ path: encodePath(row.path), instance: encodeInstance(row.instance) })) };
      }
      case 'cim.invoke': {
        const params = (p.params && typeof p.params === 'object' ? p.params : {}) as Record<string, JsonValue>;
        const decoded = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, decodeParam(v)]));
        const r = await m.invokeMethod(decodePath(path(p)), text(p, 'method'), decoded);
        const description = r.method.returnCodes?.[r.returnValue] ?? null;
        return { returnValue: r.returnValue, description, out: Object.fromEntries(Object.entries(r.out).map(([k, v]) => [k, encodeValue(v ?? null)])) };
      }
      case 'cim.watch':
        return { subscription: this.watch(text(p, 'wql'), socket) };
      case 'cim.unwatch': {
        const list = this.watches.get(socket);
        const id = Number(p.subscription);
        const stop = list?.get(id);
        if (!stop) throw Object.assign(new Error(`no subscription ${String(p.subscription)} on this connection`), { code: 'CIM_ERR_NOT_FOUND' });
        stop();
        list!.delete(id);
        return { stopped: id };
      }
    }
    throw requestError(`unknown method ${method}`);
  }

  private watch(wql: string, socket: Socket): number {
    let list = this.watches.get(socket);
    if (!list) {
      const created = new Map<number, () => void>();
      this.watches.set(socket, (list = created));
      socket.once('close', () => {
        for (const stop of created.values()) stop();
        created.clear();
      });
    }
    if (list.size >= MAX_WATCHES_PER_CONNECTION)
      throw Object.assign(new Error(`at most ${MAX_WATCHES_PER_CONNECTION} subscriptions per connection`), { code: 'CIM_ERR_SERVER_LIMITS_EXCEEDED' });
    const id = this.nextWatch++;
    const stop = subscribeWql(this.manager, wql, (e) => {
      if (socket.destroyed) return;
      socket.write(
        JSON.stringify({
          event: {
            subscription: id,
            eventClass: InstanceEventClass[e.kind],
            time: e.time.toISOString(),
            target: encodeInstance(e.target),
            ...(e.previous ? { previous: encodeInstance(e.previous) } : {}),
          },
        }) + '\n',
      );
    });
    list.set(id, stop);
    return id;
  }
}
