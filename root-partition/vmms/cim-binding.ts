/**
 * The VMMS bound to the management core: a VmmsPort over the running service (what the live
 * provider reads and calls), and the CIM-XML servers `tsvisor serve` starts beside the client
 * socket: HTTP on loopback (5988) and HTTPS (5989, loopback unless told otherwise). Both
 * authenticate every request against the data directory's access.json (management/access).
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ACCESS_FILE } from '../management/access/access-file.ts';
import { Authenticator } from '../management/access/authenticator.ts';
import { CimObjectManager } from '../management/cim/object-manager.ts';
import { createVirtualizationSchema } from '../management/cim/schema.ts';
import { CimXmlServer } from '../management/cimxml/http-server.ts';
import { VmmsProvider } from '../management/provider/vmms-provider.ts';
import type { KvpItemChange, PortResult, SnapshotPort, VmmsPort, VmmsPortEvent } from '../management/provider/vmms-port.ts';
import { imagePort } from './image-port.ts';
import { transition, type EnabledStateValue } from './lifecycle.ts';
import type { Vmms } from './vmms.ts';
import type { SwitchView } from './switch-registry.ts';
import { loadTlsIdentity } from './tls-identity.ts';
import { migrationPort } from '../migration/migration-port.ts';

/** The plaintext `user:password` file of earlier releases: refused, never read. */
export const LEGACY_CREDENTIALS_FILE = 'cim-credentials';
/** The ports WBEM clients try for CIM-XML over HTTP and HTTPS (DSP0200, IANA "wbem-http", "wbem-https"). */
export const DEFAULT_CIM_PORT = 5988;
export const DEFAULT_CIM_HTTPS_PORT = 5989;

/** The VMMS's checkpoints as the snapshot service sees them (checkpoints.ts). */
function snapshotPort(vmms: Vmms): SnapshotPort {
  const result = (r: { returnValue: number; error?: string }): PortResult => ({ returnValue: r.returnValue, ...(r.error ? { error: r.error } : {}) });
  return {
    list: (vmId) =>
      vmms.checkpoints.list(vmId).map((c) => ({
        id: c.id,
        name: c.name,
        vmId: c.vmId,
        parentId: c.parentId,
        createdAt: c.createdAt,
        current: c.current,
        hasSavedState: c.hasSavedState,
        imagePath: c.settings.imagePath,
        cmdline: c.settings.cmdline,
      })),
    create: async (vmId, id, name) => result(await vmms.checkpoints.create(vmId, name, id)),
    apply: async (vmId, id) => result(await vmms.checkpoints.apply(vmId, id)),
    destroy: async (vmId, id, subtree) => result(await vmms.checkpoints.remove(vmId, id, { subtree })),
  };
}

export function vmmsPort(vmms: Vmms): VmmsPort {
  const view = (id: string) => vmms.get(id);
  const withShutdown = vmms as Vmms & { shutdown?: (id: string, o: { force?: boolean; reason?: string; timeoutMs?: number }) => Promise<PortResult> };
  const switchRecord = (s: SwitchView) => ({
    id: s.id,
    name: s.name,
    type: s.type,
    notes: s.notes,
    learnedAddresses: s.learnedAddresses,
    connectedPorts: s.ports.length,
    ...(s.passt ? { passt: { guestAddress: s.passt.guestAddress, gateway: s.passt.gateway, forwards: s.passt.forwards } } : {}),
  });
  return {
    hostName: hostname().toUpperCase(),
    switches: {
      list: () => vmms.switches.list().map(switchRecord),
      create: async (r) => switchRecord(await vmms.switches.create(r)),
      remove: async (id) => {
        try {
          await vmms.switches.remove(id);
          return { returnValue: 0 };
        } catch (e) {
          return { returnValue: 32773, error: (e as Error).message };
        }
      },
    },
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
    shutdownGuest:
      typeof withShutdown.shutdown === 'function'
        ? // The caller decides when to give up and turn off (Stop-VM's timeout), so the guest may take its time here.
          (id, force, reason) => withShutdown.shutdown!(id, { force, reason, timeoutMs: 3_600_000 })
        : null,
    changeKvpItems: (id, change, items) => changeKvpItems(vmms, id, change, items),
    snapshots: snapshotPort(vmms),
    images: imagePort(vmms.roots),
    // The daemon starts the migration service after this binding: looked up at each use.
    get migration() {
      return vmms.migration ? migrationPort(vmms) : null;
    },
    subscribe(listener: (e: VmmsPortEvent) => void) {
      const on = {
        'state-changed': (e: { vmId: string; reason: string }) => listener({ kind: 'state-changed', vmId: e.vmId, reason: e.reason }),
        defined: (e: { vmId: string }) => listener({ kind: 'defined', vmId: e.vmId }),
        modified: (e: { vmId: string }) => listener({ kind: 'modified', vmId: e.vmId }),
        removed: (e: { vmId: string }) => listener({ kind: 'removed', vmId: e.vmId }),
        'integration-changed': (e: { vmId: string; component: 'heartbeat' | 'kvp' }) =>
          listener({ kind: 'component-changed', vmId: e.vmId, component: e.component }),
      };
      for (const [name, f] of Object.entries(on)) vmms.events.on(name, f);
      return () => {
        for (const [name, f] of Object.entries(on)) vmms.events.off(name, f);
      };
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
  if (vm.enabledState !== 2)
    return { returnValue: 32775, error: `the VM is not running (EnabledState ${vm.enabledState}); KVP items reach only a running guest` };
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

export interface CimService {
  readonly manager: CimObjectManager;
  readonly provider: VmmsProvider;
  readonly authenticator: Authenticator;
  /** The HTTP (loopback) and HTTPS servers' ports, when they listen. */
  readonly port: number | null;
  readonly httpsPort: number | null;
  /** The HTTPS certificate's SHA-256 fingerprint, when HTTPS is served. */
  readonly fingerprint256: string | null;
  readonly certFile: string | null;
  close(): Promise<void>;
}

export interface CimServiceOptions {
  /** HTTP port on 127.0.0.1: undefined for 5988, 0 for any free port, null for none. */
  cimPort?: number | null;
  /** HTTPS port: undefined for 5989, 0 for any free port, null for none. */
  httpsPort?: number | null;
  /** HTTPS address (default 127.0.0.1). */
  httpsHost?: string;
  /** The operator's certificate and key (PEM files); else one made in the data directory. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Where refusals and access-file problems are reported. */
  warn?: (message: string) => void;
}

/**
 * A default port held by another service is skipped with a warning (the client socket still
 * serves every management request); a port the operator chose must be had.
 */
async function listenOrSkip(server: CimXmlServer, chosen: boolean, warn: (m: string) => void, what: string): Promise<number | null> {
  try {
    return (await server.listen()).port;
  } catch (e) {
    if (chosen || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    warn(`${what} not served: the default port is in use (${(e as Error).message})`);
    return null;
  }
}

export async function startCimService(vmms: Vmms, opts: CimServiceOptions): Promise<CimService> {
  const root = vmms.paths.root;
  if (existsSync(join(root, LEGACY_CREDENTIALS_FILE))) {
    throw new Error(
      `${join(root, LEGACY_CREDENTIALS_FILE)} holds plaintext passwords, which are no longer read: add each user with \`tsvisor user add NAME --role full\` (password on stdin), then delete the file`,
    );
  }
  const warn = opts.warn ?? (() => {});
  const authenticator = new Authenticator({
    accessFile: join(root, ACCESS_FILE),
    onAccessFileError: (m) => warn(`access list not in use, only the service's user and root get in: ${m}`),
  });
  const schema = createVirtualizationSchema();
  const provider = new VmmsProvider(schema, vmmsPort(vmms), { configurationFile: (id) => vmms.paths.definition(id) });
  const manager = new CimObjectManager(schema, provider);
  const realm = hostname();
  const onRefused = (client: string, reason: string) => warn(`CIM-XML request from ${client} refused: ${reason}`);
  const servers: CimXmlServer[] = [];
  const close = async () => {
    for (const s of servers) await s.close();
    provider.dispose();
  };
  try {
    let port: number | null = null;
    if (opts.cimPort !== null) {
      const http = new CimXmlServer({ manager, authenticator, host: '127.0.0.1', port: opts.cimPort ?? DEFAULT_CIM_PORT, realm, onRefused });
      port = await listenOrSkip(http, opts.cimPort !== undefined, warn, 'CIM-XML over HTTP');
      if (port !== null) servers.push(http);
    }
    let httpsPort: number | null = null;
    let fingerprint256: string | null = null;
    let certFile: string | null = null;
    if (opts.httpsPort !== null) {
      let id: ReturnType<typeof loadTlsIdentity> | undefined;
      try {
        id = loadTlsIdentity(root, { ...(opts.tlsCertFile ? { certFile: opts.tlsCertFile } : {}), ...(opts.tlsKeyFile ? { keyFile: opts.tlsKeyFile } : {}) });
      } catch (e) {
        // HTTPS the operator asked for must come up; the default one may be skipped (no openssl).
        if (opts.httpsPort !== undefined || opts.tlsCertFile) throw e;
        warn(`CIM-XML over HTTPS not served: ${(e as Error).message}`);
      }
      if (id) {
        const https = new CimXmlServer({
          manager,
          authenticator,
          host: opts.httpsHost ?? '127.0.0.1',
          port: opts.httpsPort ?? DEFAULT_CIM_HTTPS_PORT,
          realm,
          onRefused,
          tls: id,
        });
        httpsPort = await listenOrSkip(https, opts.httpsPort !== undefined, warn, 'CIM-XML over HTTPS');
        if (httpsPort !== null) {
          servers.push(https);
          fingerprint256 = id.fingerprint256;
          certFile = id.certFile;
        }
      }
    }
    return { manager, provider, authenticator, port, httpsPort, fingerprint256, certFile, close };
  } catch (e) {
    await close();
    throw e;
  }
}
