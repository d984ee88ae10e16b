/**
 * RequestStateChange and Stop-VM as the service carries them out: the transition checked against
 * the lifecycle table (lifecycle.ts), a start admitted against the host's memory and CPU, the
 * worker asked (worker-operations.ts), the outcome kept as the VM's last error.
 */
import { cpuSettingsOf } from './host-cpu-scheduler.ts';
import { EnabledState, ReturnCode, stateName, transition, type LifecycleOperation } from './lifecycle.ts';
import type { VmmsContext } from './vmms-context.ts';
import type { RequestResult } from './vmms-types.ts';

/** RequestStateChange: applies the transition and resolves when it is complete. */
export async function requestStateChange(ctx: VmmsContext, idOrName: string, requested: number): Promise<RequestResult> {
  const e = ctx.find(idOrName);
  if (!e) return { returnValue: ReturnCode.InvalidParameter, error: `no VM named or with id "${idOrName}"` };
  if (ctx.closing()) return { returnValue: ReturnCode.InvalidState, error: 'the management service is stopping' };
  const t = transition(e.state, requested);
  if (!t.ok) {
    e.log.info(`refused RequestedState ${requested} in ${stateName(e.state)}: ${t.reason} (${t.returnValue})`);
    return { returnValue: t.returnValue, error: t.reason, vm: e.view() };
  }
  if (t.operation === 'start' || t.operation === 'restore') {
    const problem = ctx.admission(e, e.def.memoryBytes);
    if (problem) {
      e.log.warn(`refused to start: ${problem}`);
      return { returnValue: ReturnCode.Failed, error: problem, vm: e.view() };
    }
    const cpuProblem = ctx.cpu.admit(e.def.id, e.def.vpCount, cpuSettingsOf(e.def));
    if (cpuProblem) {
      const error = `not enough unreserved CPU: ${cpuProblem}`;
      e.log.warn(`refused to start: ${error}`);
      return { returnValue: ReturnCode.Failed, error, vm: e.view() };
    }
  }
  try {
    await ctx.ops.apply(e, t.operation as LifecycleOperation, t.via, t.to);
    e.lastError = null;
    return { returnValue: ReturnCode.Completed, vm: e.view() };
  } catch (err) {
    if (!e.conn) ctx.cpu.detach(e.def.id);
    e.lastError = (err as Error).message;
    e.log.error(`${t.operation} failed: ${e.lastError}`);
    return { returnValue: ReturnCode.Failed, error: e.lastError, vm: e.view() };
  }
}

/**
 * Stop-VM without -TurnOff: the guest's shutdown integration service is asked to shut down;
 * a guest that does not stop within `timeoutMs` (default 30 s) is turned off. Only from
 * Running. A guest that refuses, or runs no shutdown service, keeps running (Failed, with why).
 */
export async function shutdownVm(ctx: VmmsContext, idOrName: string, o: { timeoutMs?: number; force?: boolean; reason?: string } = {}): Promise<RequestResult> {
  const e = ctx.find(idOrName);
  if (!e) return { returnValue: ReturnCode.InvalidParameter, error: `no VM named or with id "${idOrName}"` };
  if (ctx.closing()) return { returnValue: ReturnCode.InvalidState, error: 'the management service is stopping' };
  if (e.state !== EnabledState.Running)
    return {
      returnValue: ReturnCode.InvalidState,
      error: `cannot shut down a VM that is ${stateName(e.state)}; only a Running VM can be shut down`,
      vm: e.view(),
    };
  const timeoutMs = o.timeoutMs ?? 30_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 3_600_000)
    return { returnValue: ReturnCode.InvalidParameter, error: 'timeoutMs must be an integer from 0 to 3600000', vm: e.view() };
  try {
    await ctx.ops.shutdown(e, { timeoutMs, force: o.force ?? false, reason: o.reason ?? '' });
    e.lastError = null;
    return { returnValue: ReturnCode.Completed, vm: e.view() };
  } catch (err) {
    e.lastError = (err as Error).message;
    e.log.error(`shutdown failed: ${e.lastError}`);
    return { returnValue: ReturnCode.Failed, error: e.lastError, vm: e.view() };
  }
}
