/**
 * `tsvisor vm start | pause | resume | save | restart <vm...>`: RequestStateChange on one or
 * several VMs (names, ids, wildcard patterns), with the cmdlets' semantics: asking for the state a
 * VM is already in is a warning (exit 0), Resume-VM continues only a Paused VM (an Off or Saved VM
 * is refused, not started), and a refusal says what the VM can do now.
 */
import type { Command } from 'commander';
import type { CimInstance } from '../management/cim/instance.ts';
import type { ManagementClient } from '../management/client/management-client.ts';
import {
  callMethod,
  CommandFailure,
  failureParts,
  findVms,
  reportFailure,
  stateText,
  verb,
  vmPath,
  warn,
  wantsJson,
  withManagement,
} from './management-session.ts';
import { instanceJson, printJson } from './table.ts';

const State = { Running: 2, Off: 3, Saved: 6, Paused: 9 } as const;

/** What one VM's command did: a change made, a warning (already there), or a failure. */
export interface VmOutcome {
  name: string;
  outcome: string;
  warning?: string;
  error?: { message: string; code: string };
  vm?: Record<string, unknown>;
}

/**
 * Runs `one` for each VM the patterns name, goes on after a failure, prints every outcome (one
 * line each, or JSON: an object for one plain name, an array otherwise) and exits 1 if any failed.
 */
export async function forEachVm(
  c: ManagementClient,
  patterns: readonly string[],
  one: (v: CimInstance) => Promise<{ outcome: string; warning?: string }>,
): Promise<void> {
  const vms = await findVms(c, patterns);
  const results: VmOutcome[] = [];
  for (const v of vms) {
    const name = String(v.get('ElementName'));
    try {
      const r = await one(v);
      if (r.warning) warn(r.warning);
      const after = await c.get(vmPath(c, v));
      results.push({ name, outcome: r.outcome, ...(r.warning ? { warning: r.warning } : {}), vm: instanceJson(after) });
      if (!wantsJson()) console.log(`${name}: ${r.outcome} (${stateText(Number(after.get('EnabledState')))})`);
    } catch (e) {
      const f = failureParts(e);
      results.push({ name, outcome: 'failed', error: { message: f.message, code: f.code } });
      if (!wantsJson()) reportFailure(e);
      process.exitCode = 1;
    }
  }
  if (wantsJson()) printJson(patterns.length === 1 && !/[*?[]/.test(patterns[0]!) ? results[0] : results);
}

/** The state a request leads to, for "already" warnings. */
const TARGET: Record<number, number> = { 2: State.Running, 6: State.Saved, 9: State.Paused };

export async function requestState(
  c: ManagementClient,
  v: CimInstance,
  requested: number,
  label: string,
  done: string,
  json: boolean,
): Promise<{ outcome: string; warning?: string }> {
  const state = Number(v.get('EnabledState'));
  const name = String(v.get('ElementName'));
  if (TARGET[requested] === state) return { outcome: `already ${stateText(state)}`, warning: `VM '${name}' is already ${stateText(state)}` };
  await callMethod(c, vmPath(c, v), 'RequestStateChange', { RequestedState: requested }, { progress: !json, label });
  return { outcome: done };
}

export function registerStateChanges(vm: Command, dir: () => string | undefined): void {
  const change = (spec: string, requested: number, label: string, what: string, done: string) =>
    verb(vm, spec)
      .description(what)
      .option('--json', 'machine-readable output')
      .action((names: string[], o: { json?: boolean }) =>
        withManagement(dir(), (c) => forEachVm(c, names, (v) => requestState(c, v, requested, label, done, Boolean(o.json)))),
      );
  change('start <vm...>', 2, 'Starting', 'Start-VM: start, restore a Saved VM, or continue a Paused one (names, ids or patterns such as "web*")', 'started');
  change('pause <vm...>', 9, 'Pausing', 'Suspend-VM', 'paused');
  change('save <vm...>', 6, 'Saving', 'Save-VM', 'saved');
  change('reset <vm...>', 11, 'Resetting', 'Restart-VM -Force: reset at once (RequestStateChange 11)', 'reset');

  verb(vm, 'resume <vm...>')
    .description('Resume-VM: continue a Paused VM (an Off or Saved VM is started with `vm start`, not here)')
    .option('--json', 'machine-readable output')
    .action((names: string[], o: { json?: boolean }) =>
      withManagement(dir(), (c) =>
        forEachVm(c, names, async (v) => {
          const state = Number(v.get('EnabledState'));
          const name = String(v.get('ElementName'));
          if (state === State.Running) return { outcome: 'already Running', warning: `VM '${name}' is already Running` };
          if (state !== State.Paused)
            throw new CommandFailure(
              'RequestStateChange',
              32775,
              `VM '${name}' is ${stateText(state)}, not Paused: there is nothing to resume; start it with: tsvisor vm start ${name}`,
            );
          return requestState(c, v, 2, 'Resuming', 'resumed', Boolean(o.json));
        }),
      ),
    );

  verb(vm, 'restart <vm...>')
    .description('Restart-VM: reboot (10); --force resets (11)')
    .option('--force', 'reset at once')
    .option('--json', 'machine-readable output')
    .action((names: string[], o: { force?: boolean; json?: boolean }) =>
      withManagement(dir(), (c) =>
        forEachVm(c, names, async (v) => {
          await callMethod(c, vmPath(c, v), 'RequestStateChange', { RequestedState: o.force ? 11 : 10 }, { progress: !o.json, label: 'Restarting' });
          return { outcome: o.force ? 'reset' : 'restarted' };
        }),
      ),
    );
}
