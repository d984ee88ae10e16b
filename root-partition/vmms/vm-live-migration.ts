/**
 * Live migration as the service sees it (the transfer itself is root-partition/migration/): an
 * arriving VM defined from the definition that travels with it and started on the stream; a
 * leaving VM streamed by its worker, its definition gone from this host once it runs there.
 */
import { existsSync } from 'node:fs';
import type { ControlNotification } from '../ipc/vmwp-control-schema.ts';
import { EnabledState, HealthState, stateName } from './lifecycle.ts';
import { validateDefinition, type VmDefinition } from './vm-definition.ts';
import { VmEntry, type VmView } from './vm-entry.ts';
import type { VmmsContext } from './vmms-context.ts';
import { VmmsError } from './vmms-types.ts';

/**
 * Live migration in (migration/migration-service.ts): defines the arriving VM from the
 * definition that travels with it, starts its worker on the stream `handOn` delivers to the
 * worker's migration socket, and resolves once the VM runs here. A VM that does not arrive
 * leaves nothing behind (no definition, no worker).
 */
export async function receiveVm(ctx: VmmsContext, definition: VmDefinition, handOn: (socketPath: string) => Promise<void>, timeoutMs: number): Promise<VmView> {
  if (ctx.closing()) throw new VmmsError('VMMS_ERR_STOPPING', 'the management service is stopping');
  const def = validateDefinition(definition, 'the arriving VM');
  if (ctx.vms.has(def.id)) throw new VmmsError('VMMS_ERR_VM_EXISTS', `a VM with id ${def.id} is already defined on this host`);
  if (ctx.find(def.name)) throw new VmmsError('VMMS_ERR_NAME_IN_USE', `a VM named "${def.name}" exists on this host`);
  ctx.confine(def);
  if (!existsSync(def.imagePath)) throw new VmmsError('VMMS_ERR_NO_IMAGE', `guest image ${def.imagePath} does not exist on this host`);
  const problem = ctx.admission(null, def.memoryBytes);
  if (problem) throw new VmmsError('VMMS_ERR_LIMIT', problem);
  ctx.store.save(def);
  const e = new VmEntry(def, ctx.log);
  ctx.vms.set(def.id, e);
  ctx.events.emit('defined', { vmId: def.id, name: def.name });
  ctx.setState(e, EnabledState.Starting, 'arriving by live migration');
  try {
    await ctx.ops.startIncoming(e, handOn, timeoutMs);
  } catch (err) {
    e.log.error(`the VM did not arrive: ${(err as Error).message}`);
    e.expectingExit = true;
    ctx.setState(e, EnabledState.Off, `the migration in failed: ${(err as Error).message}`);
    ctx.store.remove(def.id);
    ctx.vms.delete(def.id);
    ctx.events.emit('removed', { vmId: def.id, name: def.name });
    throw err;
  }
  ctx.setState(e, EnabledState.Running, 'arrived by live migration', HealthState.Ok);
  // Recorded: now the worker may tell the source, whose move then ends with the VM listed here.
  // Unanswered (the worker gone), the source keeps its copy paused and says the outcome is
  // unknown; the worker's end, if it ended, is the connection's close (worker-attachment.ts).
  await e.conn
    ?.request('ARRIVAL_RECORDED', 5000)
    .catch((err: Error) => e.log.warn(`the worker did not take the arrival as recorded: ${err.message}; the source will not hear that the VM runs here`));
  return e.view();
}

/**
 * Live migration out: the worker streams the VM to the destination (request: where, with which
 * TLS identity and trusted hosts). On success the VM runs there and its definition leaves this
 * host; on a failure it runs on here (or, when the destination's answer was lost after the
 * commit, stays Paused: it may be running there) and the error says why.
 */
export async function moveOut(
  ctx: VmmsContext,
  idOrName: string,
  request: Record<string, unknown>,
  onProgress: (p: Record<string, unknown>) => void,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const e = ctx.entry(idOrName);
  if (ctx.closing()) throw new VmmsError('VMMS_ERR_STOPPING', 'the management service is stopping');
  if (e.state !== EnabledState.Running || !e.conn)
    throw new VmmsError('VMMS_ERR_INVALID_STATE', `cannot move a VM that is ${stateName(e.state)}; only a Running VM moves live`);
  const conn = e.conn;
  const progress = (n: ControlNotification) => {
    if (n.kind !== 'MIGRATION_PROGRESS') return;
    try {
      onProgress(JSON.parse(n.message ?? '{}') as Record<string, unknown>);
    } catch {
      /* a malformed report is only a report */
    }
  };
  conn.on('notification', progress);
  e.log.info(`live migration to ${String(request.host)}:${String(request.port)} requested`);
  let summary: Record<string, unknown>;
  try {
    const r = await conn.request('MIGRATE', timeoutMs, { migration: JSON.stringify({ ...request, hello: { definition: e.def } }) });
    // The worker exits now: its VM runs on the destination.
    e.expectingExit = true;
    summary = JSON.parse(r.migrationSummary || '{}') as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: string }).code;
    e.lastError = `live migration failed: ${(err as Error).message}`;
    e.log.error(e.lastError);
    if (code === 'MIGRATION_ERR_OUTCOME_UNKNOWN') ctx.setState(e, EnabledState.Paused, e.lastError, HealthState.MajorFailure);
    throw err;
  } finally {
    conn.off('notification', progress);
  }
  e.generation++;
  await Promise.race([conn.whenClosed(), new Promise((r) => setTimeout(r, 3000))]);
  if (e.pid !== null && !conn.isClosed) await ctx.ops.apply(e, 'turn-off', EnabledState.Stopping, EnabledState.Off).catch(() => {});
  ctx.setState(e, EnabledState.Off, `moved to ${String(request.host)}:${String(request.port)}`);
  ctx.store.remove(e.def.id);
  ctx.vms.delete(e.def.id);
  e.log.info(`moved to ${String(request.host)}:${String(request.port)}; its definition left this host`);
  ctx.events.emit('removed', { vmId: e.def.id, name: e.def.name });
  return summary;
}

/** Cancels a live migration of the VM before its commit point (the VM runs on here). */
export async function cancelMove(ctx: VmmsContext, idOrName: string): Promise<void> {
  const e = ctx.entry(idOrName);
  if (!e.conn) throw new VmmsError('VMMS_ERR_NOT_RUNNING', `VM ${e.def.name} has no worker`);
  await e.conn.request('CANCEL_MIGRATION', 5000);
}
