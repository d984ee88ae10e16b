/**
 * Set-VM -AutomaticStopAction and -AutomaticStartAction: what the service does to each VM as it
 * stops (save or turn off), which VMs ran then (`running-at-stop.json`), and which it starts as
 * it starts again.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../host/atomic-file.ts';
import { EnabledState, ReturnCode } from './lifecycle.ts';
import type { VmmsContext } from './vmms-context.ts';
import type { RequestResult } from './vmms-types.ts';
import { requestStateChange } from './vm-state-requests.ts';

/** The VMs running as the service last stopped them (for 'start-if-running'). */
const RUNNING_AT_STOP_FILE = 'running-at-stop.json';

function runningAtStopFile(ctx: VmmsContext): string {
  return join(ctx.paths.root, RUNNING_AT_STOP_FILE);
}

/** Each VM with a worker gets its automatic stop action — saved or turned off — after the running ones are recorded. */
export async function applyAutomaticStopActions(ctx: VmmsContext): Promise<void> {
  recordRunning(ctx);
  await Promise.all(
    [...ctx.vms.values()]
      .filter((e) => e.pid !== null || e.conn)
      .map(async (e) => {
        const action = e.def.automaticStopAction;
        let r =
          action === 'save' && (e.state === EnabledState.Running || e.state === EnabledState.Paused)
            ? await requestStateChange(ctx, e.def.id, 6)
            : await requestStateChange(ctx, e.def.id, 3);
        if (r.returnValue !== ReturnCode.Completed && action === 'save') {
          e.log.error(`automatic save failed (${r.error}); turning the VM off`);
          r = await requestStateChange(ctx, e.def.id, 3);
        }
      }),
  );
}

/** Which VMs ran as the service stopped them: the 'start-if-running' VMs the next start starts. */
function recordRunning(ctx: VmmsContext): void {
  const running = [...ctx.vms.values()].filter((e) => e.state === EnabledState.Running || e.state === EnabledState.Paused).map((e) => e.def.id);
  try {
    writeFileAtomic(runningAtStopFile(ctx), JSON.stringify(running) + '\n');
  } catch (err) {
    ctx.log.warn(`could not record the running VMs for their automatic start: ${(err as Error).message}`);
  }
}

/**
 * As the service starts: 'start' VMs are started, 'start-if-running' ones that were running when
 * the service last stopped them. Each VM's outcome is logged; one that fails to start stays Off
 * with its error, as after a failed `vm start`.
 */
export async function applyAutomaticStartActions(ctx: VmmsContext): Promise<{ vm: string; result: RequestResult }[]> {
  let wasRunning: string[] = [];
  try {
    const v: unknown = JSON.parse(readFileSync(runningAtStopFile(ctx), 'utf8'));
    if (Array.isArray(v)) wasRunning = v.filter((x): x is string => typeof x === 'string');
  } catch {
    /* no record: the service never stopped VMs here */
  }
  rmSync(runningAtStopFile(ctx), { force: true });
  const due = [...ctx.vms.values()].filter(
    (e) => e.pid === null && (e.def.automaticStartAction === 'start' || (e.def.automaticStartAction === 'start-if-running' && wasRunning.includes(e.def.id))),
  );
  const out: { vm: string; result: RequestResult }[] = [];
  for (const e of due) {
    const result = await requestStateChange(ctx, e.def.id, 2);
    if (result.returnValue === ReturnCode.Completed) e.log.info(`started by its automatic start action (${e.def.automaticStartAction})`);
    else e.log.error(`automatic start (${e.def.automaticStartAction}) failed: ${result.error}`);
    out.push({ vm: e.def.name, result });
  }
  return out;
}
