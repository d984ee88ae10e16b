/**
 * A standard checkpoint of a running VM, as the worker takes it: the VPs park, the devices save
 * their state, the VPs' stacks are captured and the whole VM written to the checkpoint's file —
 * as a save does — but then, still paused, each drive moves from its file (frozen from now on:
 * the checkpoint's) to a new differencing child of it, the VPs rewind, and the VM runs on. The
 * saved state and the frozen files are the same instant: the devices served every request the
 * guest had issued before they saved, and the old files were flushed before they closed.
 *
 * Any failure puts everything back: drives on their old files, VPs continued, the VM running
 * (or paused) as before, and the caller told why (it removes the files it made).
 */
import type { VpExecution } from '../../hypervisor/vp/vp-capture.ts';
import type { DiskSwitch } from './disk-switch.ts';

export type { DiskSwitch };

/** The worker's steps a checkpoint is made of (VmWorker supplies them). */
export interface CheckpointSteps {
  wasRunning: boolean;
  pause(): Promise<void>;
  resume(): void;
  /** Devices save (VMBus goes still), VPs are captured, the file is written; returns the captures. */
  saveWhole(path: string, captured: (x: VpExecution[]) => void): Promise<void>;
  switchDisks(switches: DiskSwitch[]): Promise<void>;
  /** The VPs rewind and park again (the partition stays paused). */
  continueVps(executions: VpExecution[]): Promise<void>;
  /** After a failure: the captured VPs continue; throws when even that fails (the VM is then off). */
  undo(executions: VpExecution[] | null, cause: unknown): Promise<void>;
  turnOff(): Promise<void>;
}

/**
 * Test-only: with TSVISOR_CHECKPOINT_FAULT=saved|switched in its environment, a worker fails its
 * first checkpoint after that step (and only the first: the next one shows the VM recovered).
 */
export const CHECKPOINT_FAULT_ENV = 'TSVISOR_CHECKPOINT_FAULT';

function faultAfter(step: 'saved' | 'switched'): void {
  if (process.env[CHECKPOINT_FAULT_ENV] !== step) return;
  delete process.env[CHECKPOINT_FAULT_ENV];
  throw Object.assign(new Error(`injected checkpoint failure after the step "${step}"`), { code: 'VMWP_ERR_CHECKPOINT_FAULT' });
}

/** Where the pause went, in ms: parking the VPs, saving the VM, switching drives, rewinding the VPs. */
export interface CheckpointPhases {
  park: number;
  save: number;
  switch: number;
  rewind: number;
}

/** Takes the checkpoint; resolves with how long the VM was paused for it (ms) and where that went. */
export async function takeRunningCheckpoint(s: CheckpointSteps, path: string, switches: DiskSwitch[]): Promise<{ pauseMs: number; phases: CheckpointPhases }> {
  const t0 = performance.now();
  const marks: number[] = [];
  if (s.wasRunning) await s.pause();
  marks.push(performance.now());
  let executions: VpExecution[] | null = null;
  let switched = false;
  try {
    await s.saveWhole(path, (x) => {
      executions = x;
    });
    marks.push(performance.now());
    faultAfter('saved');
    await s.switchDisks(switches);
    marks.push(performance.now());
    switched = true;
    faultAfter('switched');
    await s.continueVps(executions!);
    marks.push(performance.now());
  } catch (e) {
    if (switched) {
      try {
        await s.switchDisks(switches.map((w) => ({ from: w.to, to: w.from })));
      } catch (back) {
        // Running on would write files the caller is about to delete: the VM stops instead.
        await s.turnOff();
        throw Object.assign(
          new Error(
            `the checkpoint failed (${(e as Error).message}) and the drives could not return to their files (${(back as Error).message}); the VM is turned off`,
          ),
          { code: 'VMWP_ERR_CHECKPOINT_UNDO' },
        );
      }
    }
    await s.undo(executions, e);
    if (s.wasRunning) s.resume();
    throw e;
  }
  if (s.wasRunning) s.resume();
  const [parked, saved, switchedAt, rewound] = marks;
  return { pauseMs: performance.now() - t0, phases: { park: parked - t0, save: saved - parked, switch: switchedAt - saved, rewind: rewound - switchedAt } };
}
