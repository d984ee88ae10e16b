/**
 * A graceful shutdown as Stop-VM does it: the shutdown integration service asks the guest, and
 * the guest has `timeoutMs` in all to answer and then stop (every VP halted or returned). A
 * guest that refuses, or has no shutdown service, is left running and the caller is told why;
 * one that does not answer or does not stop in time gets 'timed-out', and the worker then turns
 * the VM off.
 */
import type { ShutdownOutcome } from '../ipc/vmwp-control-schema.ts';
import type { VmWorker } from './vm-worker.ts';

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

export class ShutdownRefusedError extends Error {
  constructor(
    readonly code: 'VMWP_ERR_SHUTDOWN_REFUSED' | 'VMWP_ERR_SHUTDOWN_UNAVAILABLE',
    message: string,
  ) {
    super(message);
  }
}

export async function shutDownGuest(
  worker: Pick<VmWorker, 'initiateShutdown' | 'whenGuestStopped'>,
  o: { force: boolean; reason: string; timeoutMs: number },
): Promise<ShutdownOutcome> {
  const started = performance.now();
  const answer = await worker.initiateShutdown(o);
  switch (answer.outcome) {
    case 'refused':
      throw new ShutdownRefusedError('VMWP_ERR_SHUTDOWN_REFUSED', `the guest refused to shut down (status 0x${answer.status.toString(16)}); it keeps running`);
    case 'unavailable':
      throw new ShutdownRefusedError(
        'VMWP_ERR_SHUTDOWN_UNAVAILABLE',
        `the guest is not running the shutdown integration service (${answer.reason}); turn the VM off instead`,
      );
    case 'no-answer':
      return 'timed-out';
    case 'accepted':
      break;
  }
  const left = Math.max(0, o.timeoutMs - (performance.now() - started));
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    worker.whenGuestStopped().then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), left);
    }),
  ]);
  clearTimeout(timer);
  return stopped ? 'shut-down' : 'timed-out';
}
