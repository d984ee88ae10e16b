/**
 * `tsvisor vm wait` (Wait-VM -For Heartbeat, and for a state), `vm heartbeat` (the heartbeat
 * service's status in words) and `vm kvp` (Get-VMKvp-like: the guest's items, and host items
 * written or removed with AddKvpItems / RemoveKvpItems). Waiting follows the events the service
 * pushes; nothing is polled.
 */
import type { Command } from 'commander';
import type { CimInstance } from '../management/cim/instance.ts';
import { createVirtualizationSchema } from '../management/cim/schema.ts';
import type { ManagementClient } from '../management/client/management-client.ts';
import {
  callMethod,
  CommandFailure,
  findVm,
  findVms,
  servicePath,
  stateText,
  verb,
  vmPath,
  wantsJson,
  wholeNumber,
  withManagement,
} from './management-session.ts';
import { printJson, printTable } from './table.ts';

const schema = createVirtualizationSchema();
const WAIT_FOR = ['heartbeat', 'running', 'off'] as const;
type WaitFor = (typeof WAIT_FOR)[number];

async function heartbeatOf(c: ManagementClient, vmId: string): Promise<CimInstance | null> {
  const [hb] = await c.query(
    `ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${vmId}"} WHERE ResultClass = Msvm_HeartbeatComponent`,
  );
  return hb ?? null;
}

const heartbeatText = (hb: CimInstance | null) => String((hb?.get('StatusDescriptions') as string[] | null)?.[0] ?? 'No Contact');

/** Resolves when `reached` holds for the VM, or rejects with why it never will / the timeout. */
async function waitFor(c: ManagementClient, v: CimInstance, what: WaitFor, timeoutMs: number | null): Promise<string> {
  const id = String(v.get('Name'));
  const name = String(v.get('ElementName'));
  if (what === 'heartbeat' && !(await heartbeatOf(c, id))) {
    throw new CommandFailure(
      'Wait-VM',
      32770,
      `VM '${name}' has no heartbeat integration service to wait for; enable it (the VM Off): tsvisor vm ic enable ${name} heartbeat`,
    );
  }
  let settle!: (r: { ok: true; text: string } | { ok: false; error: CommandFailure }) => void;
  const done = new Promise<{ ok: true; text: string } | { ok: false; error: CommandFailure }>((r) => {
    settle = r;
  });
  /** Looks at the VM now: reached, impossible, or not yet. */
  const check = async () => {
    const vm = await c.get(vmPath(c, v));
    const state = Number(vm.get('EnabledState'));
    if (what === 'running' && state === 2) return settle({ ok: true, text: 'Running' });
    if (what === 'off' && state === 3) return settle({ ok: true, text: 'Off' });
    if (what === 'heartbeat') {
      const hb = await heartbeatOf(c, id);
      if (state === 2 && Number((hb?.get('OperationalStatus') as number[] | null)?.[0]) === 2)
        return settle({ ok: true, text: `heartbeat ${heartbeatText(hb)}` });
      if (state === 3 || state === 6)
        return settle({
          ok: false,
          error: new CommandFailure(
            'Wait-VM',
            32775,
            `VM '${name}' is ${stateText(state)}, so no heartbeat will come; start it first (tsvisor vm start ${name})`,
          ),
        });
    }
  };
  const recheck = () => {
    check().catch((e: Error) => settle({ ok: false, error: new CommandFailure('failed', null, e.message) }));
  };
  const watches = [
    await c.watch(`SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'Msvm_ComputerSystem' AND TargetInstance.Name = '${id}'`, recheck),
    ...(what === 'heartbeat'
      ? [
          await c.watch(
            `SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'Msvm_HeartbeatComponent' AND TargetInstance.SystemName = '${id}'`,
            recheck,
          ),
        ]
      : []),
  ];
  const timer =
    timeoutMs === null
      ? null
      : setTimeout(
          () => settle({ ok: false, error: new CommandFailure('timeout', null, `VM '${name}' did not reach ${what} within ${timeoutMs / 1000} s`) }),
          timeoutMs,
        );
  recheck();
  try {
    const r = await done;
    if (!r.ok) throw r.error;
    return r.text;
  } finally {
    if (timer) clearTimeout(timer);
    for (const w of watches) await w.stop().catch(() => {});
  }
}

function kvpRows(component: CimInstance | null): { pool: string; name: string; data: string }[] {
  const items = (prop: string, pool: string) =>
    ((component?.get(prop) as CimInstance[] | null) ?? []).map((i) => ({ pool, name: String(i.get('Name')), data: String(i.get('Data')) }));
  return [...items('GuestExchangeItems', 'guest'), ...items('GuestIntrinsicExchangeItems', 'intrinsic')];
}

export function registerWaitAndKvp(vm: Command, dir: () => string | undefined): void {
  verb(vm, 'wait <vm...>')
    .description("Wait-VM: until each VM's heartbeat is OK (the default), or it is running or off")
    .option('--for <what>', 'heartbeat, running or off', 'heartbeat')
    .option('--timeout <seconds>', 'give up after this long (default: wait as long as it takes)')
    .option('--json', 'machine-readable output')
    .action((names: string[], o: { for: string; timeout?: string; json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const what = o.for.toLowerCase() as WaitFor;
        if (!WAIT_FOR.includes(what)) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `--for must be heartbeat, running or off, not "${o.for}"`);
        const timeoutMs = o.timeout === undefined ? null : wholeNumber('--timeout', o.timeout, 0, 86_400) * 1000;
        const vms = await findVms(c, names);
        const started = Date.now();
        const results = await Promise.all(vms.map(async (v) => ({ name: String(v.get('ElementName')), reached: await waitFor(c, v, what, timeoutMs) })));
        const seconds = (Date.now() - started) / 1000;
        if (wantsJson()) return printJson({ for: what, seconds, vms: results });
        for (const r of results) console.log(`${r.name}: ${r.reached}`);
      }),
    );

  verb(vm, 'heartbeat <vm>')
    .description("Get-VMIntegrationService Heartbeat: the guest's heartbeat status in words")
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const v = await findVm(c, name);
        const hb = await heartbeatOf(c, String(v.get('Name')));
        if (!hb)
          throw new CommandFailure(
            'CIM_ERR_NOT_FOUND',
            6,
            `VM '${name}' has no heartbeat integration service; enable it (the VM Off): tsvisor vm ic enable ${name} heartbeat`,
          );
        const status = Number((hb.get('OperationalStatus') as number[] | null)?.[0] ?? 0);
        if (o.json) return printJson({ vm: name, status: heartbeatText(hb), code: status, state: stateText(Number(v.get('EnabledState'))) });
        console.log(`${name}: ${heartbeatText(hb)}`);
      }),
    );

  verb(vm, 'kvp <vm>')
    .description("the KVP exchange: the guest's items (Get-VMKvp); --set and --remove write host items into the running guest")
    .option('--set <key=value>', 'add or change a host item (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--remove <key>', 'remove a host item (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--json', 'machine-readable output')
    .action((name: string, o: { set: string[]; remove: string[]; json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const v = await findVm(c, name);
        const id = String(v.get('Name'));
        const [component] = await c.query(
          `ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${id}"} WHERE ResultClass = Msvm_KvpExchangeComponent`,
        );
        if (!component)
          throw new CommandFailure(
            'CIM_ERR_NOT_FOUND',
            6,
            `VM '${name}' has no KVP integration service; enable it (the VM Off): tsvisor vm ic enable ${name} kvp`,
          );
        const writes = o.set.map((kv) => {
          const at = kv.indexOf('=');
          if (at <= 0) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `--set takes key=value, not "${kv}"`);
          return { Name: kv.slice(0, at), Data: kv.slice(at + 1) };
        });
        if ((writes.length || o.remove.length) && Number(v.get('EnabledState')) !== 2) {
          throw new CommandFailure(
            'AddKvpItems',
            32775,
            `VM '${name}' is ${stateText(Number(v.get('EnabledState')))}; host items go to a running guest: start it first (tsvisor vm start ${name})`,
          );
        }
        const item = (i: { Name: string; Data: string }) => schema.createInstance('Msvm_KvpExchangeDataItem', { ...i, Source: 0 });
        const service = await servicePath(c);
        if (writes.length)
          await callMethod(c, service, 'AddKvpItems', { TargetSystem: vmPath(c, v), DataItems: writes.map(item) }, { progress: false, label: 'KVP' });
        if (o.remove.length)
          await callMethod(
            c,
            service,
            'RemoveKvpItems',
            { TargetSystem: vmPath(c, v), DataItems: o.remove.map((k) => item({ Name: k, Data: '' })) },
            { progress: false, label: 'KVP' },
          );
        const rows = kvpRows(component);
        if (o.json) return printJson({ vm: name, set: writes.map((w) => w.Name), removed: o.remove, items: rows });
        if (writes.length || o.remove.length)
          console.log(
            `${name}: ${[writes.length ? `${writes.length} host item(s) written` : '', o.remove.length ? `${o.remove.length} removed` : ''].filter(Boolean).join(', ')}`,
          );
        if (rows.length)
          printTable(
            ['POOL', 'NAME', 'DATA'],
            rows.map((r) => [r.pool, r.name, r.data]),
          );
        else
          console.log(
            Number(v.get('EnabledState')) === 2
              ? `(the guest of '${name}' has reported no items yet)`
              : `(VM '${name}' is ${stateText(Number(v.get('EnabledState')))}: its items show while it runs)`,
          );
      }),
    );
}
