/**
 * The VMMS bound to the management core: a VmmsPort over the running service (what the live
 * provider reads and calls), and the CIM-XML server `tsvisor serve` starts beside the client
 * socket. Loopback only by default; beyond loopback the HTTP Basic credentials in the data
 * directory's `cim-credentials` file (one `user:password` a line) are required.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CimObjectManager } from '../management/cim/object-manager.ts';
import { createVirtualizationSchema } from '../management/cim/schema.ts';
import { CimXmlServer, isLoopback, type CimXmlCredentials } from '../management/cimxml/http-server.ts';
import { VmmsProvider } from '../management/provider/vmms-provider.ts';
import type { KvpItemChange, PortResult, VmmsPort, VmmsPortEvent } from '../management/provider/vmms-port.ts';
import { transition, type EnabledStateValue } from './lifecycle.ts';
import type { Vmms } from './vmms.ts';

export const CIM_CREDENTIALS_FILE = 'cim-credentials';
/** The port WBEM clients try for CIM-XML over HTTP (DSP0200, IANA "wbem-http"). */
export const DEFAULT_CIM_PORT = 5988;

export function vmmsPort(vmms: Vmms): VmmsPort {
  const view = (id: string) => vmms.get(id);
  const withShutdown = vmms as Vmms & { shutdown?: (id: string, o: { force?: boolean; reason?: string; timeoutMs?: number }) => Promise<PortResult> };
  return {
    hostName: hostname().toUpperCase(),
    list: () => vmms.list(),
    get: (id) => view(id) ?? undefined,
    define: (change) => vmms.defineVm({ ...change, devices: change.devices ? [...change.devices] : [] }),
    modify: (id, change) => vmms.modifyVm(id, { ...change, ...(change.devices ? { devices: [...change.devices] } : {}) }),
    remove: (id) => vmms.removeVm(id),
    refuseStateChange: (id, requested) => {
      const vm = view(id);
      if (!vm) return { returnValue: 32773, error: `no VM ${id}` };
      const t = transition(vm.enabledState as EnabledStateValue, requested);
      return t.ok ? null : { returnValue: t.returnValue, error: t.reason };
    },
    requestStateChange: (id, requested) => vmms.requestStateChange(id, requested),
    // The guest's shutdown integration service, where this VMMS offers it (Vmms.shutdown);
    // without it InitiateShutdown answers 32770 Not Supported.
    shutdownGuest: typeof withShutdown.shutdown === 'function'
      // The caller decides when to give up and turn off (Stop-VM's timeout), so the guest may take its time here.
      ? (id, force, reason) => withShutdown.shutdown!(id, { force, reason, timeoutMs: 3_600_000 })
      : null,
    changeKvpItems: (id, change, items) => changeKvpItems(vmms, id, change, items),
    subscribe(listener: (e: VmmsPortEvent) => void) {
      const on = {
        'state-changed': (e: { vmId: string; reason: string }) => listener({ kind: 'state-changed', vmId: e.vmId, reason: e.reason }),
        defined: (e: { vmId: string }) => listener({ kind: 'defined', vmId: e.vmId }),
        modified: (e: { vmId: string }) => listener({ kind: 'modified', vmId: e.vmId }),
        removed: (e: { vmId: string }) => listener({ kind: 'removed', vmId: e.vmId }),
        'integration-changed': (e: { vmId: string; component: 'heartbeat' | 'kvp' }) => listener({ kind: 'component-changed', vmId: e.vmId, component: e.component }),
      };
      for (const [name, f] of Object.entries(on)) vmms.events.on(name, f);
      return () => { for (const [name, f] of Object.entries(on)) vmms.events.off(name, f); };
    },
  };
}

/** KVP pool External (Linux KVP_POOL_EXTERNAL): the host's items for the guest (kvp-protocol.ts). */
const KVP_POOL_EXTERNAL = 0;

/**
 * Hyper-V's rules for host items: Add refuses a key the guest already holds, Modify and Remove
 * one it does not. Items are applied in order and the first failure ends the call.
 */
async function changeKvpItems(vmms: Vmms, id: string, change: KvpItemChange, items: readonly { name: string; data: string }[]): Promise<PortResult> {
  const vm = vmms.get(id);
  if (!vm) return { returnValue: 32773, error: `no VM ${id}` };
  if (vm.enabledState !== 2) return { returnValue: 32775, error: `the VM is not running (EnabledState ${vm.enabledState}); KVP items reach only a running guest` };
  try {
    for (const { name, data } of items) {
      if (!name) return { returnValue: 32773, error: 'a data item has no Name' };
      const held = await vmms.kvpGet(id, KVP_POOL_EXTERNAL, name);
      if (change === 'add' && held !== null) return { returnValue: 32768, error: `the guest already has a host item named ${name} (use ModifyKvpItems)` };
      if (change !== 'add' && held === null) return { returnValue: 32768, error: `the guest has no host item named ${name}` };
      if (change === 'remove') await vmms.kvpDelete(id, KVP_POOL_EXTERNAL, name);
      else await vmms.kvpSet(id, KVP_POOL_EXTERNAL, name, data);
    }
  } catch (e) {
    return { returnValue: 32768, error: (e as Error).message };
  }
  return { returnValue: 0 };
}

/** `user:password` lines; blank lines and # comments skipped. */
export function readCimCredentials(dataDir: string): CimXmlCredentials[] {
  const path = join(dataDir, CIM_CREDENTIALS_FILE);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => {
    const colon = l.indexOf(':');
    if (colon <= 0) throw new Error(`${path}: each line must be user:password`);
    return { user: l.slice(0, colon), password: l.slice(colon + 1) };
  });
}

export interface CimService {
  readonly manager: CimObjectManager;
  readonly provider: VmmsProvider;
  /** The CIM-XML server, when one listens. */
  readonly server: CimXmlServer | null;
  readonly port: number | null;
  close(): Promise<void>;
}

export async function startCimService(vmms: Vmms, opts: { cimPort?: number | null; cimHost?: string }): Promise<CimService> {
  const schema = createVirtualizationSchema();
  const provider = new VmmsProvider(schema, vmmsPort(vmms), { configurationFile: (id) => vmms.paths.definition(id) });
  const manager = new CimObjectManager(schema, provider);
  let server: CimXmlServer | null = null;
  let port: number | null = null;
  if (opts.cimPort !== null) {
    const host = opts.cimHost ?? '127.0.0.1';
    const credentials = readCimCredentials(vmms.paths.root);
    if (!isLoopback(host) && credentials.length === 0) {
      throw new Error(`serving CIM-XML on ${host} needs credentials: write user:password lines to ${join(vmms.paths.root, CIM_CREDENTIALS_FILE)}`);
    }
    server = new CimXmlServer({ manager, host, port: opts.cimPort ?? DEFAULT_CIM_PORT, ...(credentials.length ? { credentials } : {}) });
    port = (await server.listen()).port;
  }
  return {
    manager, provider, server, port,
    async close() {
      await server?.close();
      provider.dispose();
    },
  };
}
