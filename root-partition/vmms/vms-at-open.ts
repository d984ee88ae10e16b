/**
 * The VMs as the service opens: every definition loaded (the refused ones kept as load errors),
 * each VM Saved or Off by its saved-state file, the workers of VMs that kept running reattached,
 * and the workers without a loadable definition found (orphan-workers.ts).
 */
import { existsSync, rmSync } from 'node:fs';
import type { DefinitionLoadError } from './definition-store.ts';
import { EnabledState } from './lifecycle.ts';
import type { OrphanWorkers } from './orphan-workers.ts';
import { VmEntry } from './vm-entry.ts';
import type { VmmsContext } from './vmms-context.ts';

export async function loadVms(ctx: VmmsContext, orphanWorkers: OrphanWorkers): Promise<DefinitionLoadError[]> {
  const { definitions, errors } = ctx.store.loadAll();
  for (const e of errors) ctx.log.error(`VM definition not loaded: ${e.message}`);
  await Promise.all(
    definitions.map(async (def) => {
      const entry = new VmEntry(def, ctx.log);
      ctx.vms.set(def.id, entry);
      const saved = ctx.paths.savedState(def.id);
      entry.state = existsSync(saved) ? EnabledState.Saved : EnabledState.Off;
      await ctx.ops.reattach(entry);
      // A worker runs the VM: a saved state beside it is older than the guest (the worker
      // consumes the file it restores), and restoring it later would roll the guest back.
      if (entry.pid !== null && existsSync(saved)) {
        entry.log.warn(`${saved} is older than the running VM; discarded`);
        rmSync(saved, { force: true });
      }
    }),
  );
  orphanWorkers.scan(new Set(definitions.map((d) => d.id)), errors);
  ctx.log.info(
    `loaded ${definitions.length} VM definitions (${errors.length} refused); ${[...ctx.vms.values()].filter((e) => e.view().processId).length} running VMs reattached`,
  );
  return errors;
}
