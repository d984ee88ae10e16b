/**
 * Checkpoint-VM, Get-VMSnapshot, Restore-VMSnapshot and Remove-VMSnapshot for VMMS: the tree
 * per VM (checkpoint-tree.ts, persisted by checkpoint-store.ts) and the disk files behind it
 * (checkpoint-files.ts).
 *
 * - Taking a checkpoint freezes each writable drive's file and gives the drive a differencing
 *   child of it; the checkpoint keeps the settings and the frozen files. A running or paused VM
 *   also has its whole state saved into the checkpoint without stopping (running-checkpoint.ts
 *   in the worker); a Saved VM's saved state is copied into it.
 * - Applying one turns the VM off (discarding a saved state), gives each of the checkpoint's
 *   files a new differencing child and the VM the checkpoint's settings on those; a checkpoint
 *   with a saved state leaves the VM Saved, so that starting it continues from that instant.
 * - Removing one drops it from the tree and collects the files nobody needs any more.
 *
 * The definition is written before the tree: a crash between the two leaves a drive on a new
 * differencing child with no checkpoint naming its parent (harmless), never a checkpoint whose
 * frozen file the VM still writes.
 */
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { DataDir } from '../host/data-dir.ts';
import { checkCheckpointable, childNames, collectFiles, makeChildren, type LiveMerge } from './checkpoint-files.ts';
import { CheckpointStore } from './checkpoint-store.ts';
import {
  descendants,
  findCheckpoint,
  MAX_CHECKPOINT_NAME,
  MAX_CHECKPOINTS,
  withDiskPaths,
  withoutCheckpoint,
  writableDisks,
  type CheckpointRecord,
  type CheckpointTree,
} from './checkpoint-tree.ts';
import { EnabledState, isTransitional, ReturnCode, stateName, type ReturnCodeValue } from './lifecycle.ts';
import { GUID, type VmDefinition } from './vm-definition.ts';
import type { VmEntry } from './vm-entry.ts';

/** What VMMS lends the checkpoint operations. */
export interface CheckpointHost {
  readonly paths: DataDir;
  find(idOrName: string): VmEntry | undefined;
  /** Validates and persists a new definition of the VM (its id and name kept). */
  replaceDefinition(e: VmEntry, def: VmDefinition, reason: string): void;
  turnOff(e: VmEntry): Promise<{ returnValue: ReturnCodeValue; error?: string }>;
  /** The VM is Saved now: its saved-state file is in place. */
  markSaved(e: VmEntry, reason: string): void;
  /** Saves the running VM's whole state into `savedState` and moves its drives to `leaves` while paused. */
  checkpointRunning(e: VmEntry, savedState: string, switches: { from: string; to: string }[]): Promise<{ pauseMs: number }>;
  /**
   * Merges the running VM's drive file `child` into its parent `parent` while it runs (the drive
   * ends on `parent`), or a file deeper in its chain; `repoint`: the files built on `child`, to be
   * pointed at `parent` (an operator's disk, which keeps its name).
   */
  mergeRunning(e: VmEntry, child: string, parent: string, repoint?: readonly string[]): Promise<{ pauseMs: number }>;
}

export interface CheckpointView {
  id: string;
  name: string;
  vmId: string;
  vmName: string;
  parentId: string | null;
  createdAt: string;
  /** The checkpoint the VM's current state derives from. */
  current: boolean;
  /** Standard (with saved state) or disks only (Hyper-V's Production-like checkpoint of an Off VM). */
  hasSavedState: boolean;
  disks: string[];
  settings: VmDefinition;
}

export interface CheckpointResult {
  returnValue: ReturnCodeValue;
  error?: string;
  checkpoint?: CheckpointView;
  /** File work done (merges, deletions) and left for later. */
  done?: string[];
  deferred?: string[];
  /** How long the VM was paused for a checkpoint of a running VM. */
  pauseMs?: number;
}

const fail = (returnValue: ReturnCodeValue, error: string): CheckpointResult => ({ returnValue, error });

export class VmCheckpoints {
  readonly store: CheckpointStore;
  /** One change at a time per VM: each reads the tree, changes files, writes the tree. */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(
    private readonly host: CheckpointHost,
    private readonly log: (vm: VmEntry, m: string) => void,
  ) {
    this.store = new CheckpointStore(host.paths.checkpointsDir);
  }

  list(vm: string): CheckpointView[] {
    const e = this.vm(vm);
    const tree = this.store.load(e.def.id);
    return tree.checkpoints.map((c) => view(e, tree, c));
  }

  get(vm: string, checkpoint: string): CheckpointView | undefined {
    const e = this.vm(vm);
    const tree = this.store.load(e.def.id);
    const c = findCheckpoint(tree, checkpoint);
    return 'error' in c ? undefined : view(e, tree, c);
  }

  /** `id`: the new checkpoint's GUID when the caller names it beforehand (CreateSnapshot's ResultingSnapshot). */
  create(vm: string, name?: string, id?: string): Promise<CheckpointResult> {
    if (id !== undefined && !GUID.test(id)) return Promise.resolve(fail(ReturnCode.InvalidParameter, `checkpoint id ${id} is not a lower-case GUID`));
    return this.serial(vm, (e) => this.createNow(e, name, id ?? randomUUID()));
  }

  apply(vm: string, checkpoint: string): Promise<CheckpointResult> {
    return this.serial(vm, (e) => this.applyNow(e, checkpoint));
  }

  remove(vm: string, checkpoint: string, o: { subtree?: boolean } = {}): Promise<CheckpointResult> {
    return this.serial(vm, (e) => this.removeNow(e, checkpoint, o.subtree ?? false));
  }

  /** DestroySystem: the VM's tree and checkpoint saved states go; its disk files stay. */
  forgetVm(vmId: string): void {
    this.store.remove(vmId);
  }

  private vm(idOrName: string): VmEntry {
    const e = this.host.find(idOrName);
    if (!e) throw Object.assign(new Error(`no VM named or with id "${idOrName}"`), { code: 'VMMS_ERR_NO_SUCH_VM' });
    return e;
  }

  private async serial(vm: string, op: (e: VmEntry) => Promise<CheckpointResult>): Promise<CheckpointResult> {
    const e = this.host.find(vm);
    if (!e) return fail(ReturnCode.InvalidParameter, `no VM named or with id "${vm}"`);
    const before = this.busy.get(e.def.id) ?? Promise.resolve();
    const run = before
      .then(() => op(e))
      .catch((err: Error): CheckpointResult => {
        this.log(e, `checkpoint operation failed: ${err.message}`);
        return fail(ReturnCode.Failed, err.message);
      });
    this.busy.set(e.def.id, run);
    try {
      return await run;
    } finally {
      if (this.busy.get(e.def.id) === run) this.busy.delete(e.def.id);
    }
  }

  private async createNow(e: VmEntry, name: string | undefined, id: string): Promise<CheckpointResult> {
    const tree = this.store.load(e.def.id);
    if (tree.checkpoints.length >= MAX_CHECKPOINTS)
      return fail(ReturnCode.Failed, `VM ${e.def.name} has ${tree.checkpoints.length} checkpoints, the limit; remove some first`);
    if (tree.checkpoints.some((c) => c.id === id)) return fail(ReturnCode.InvalidParameter, `VM ${e.def.name} already has a checkpoint ${id}`);
    const cpName = name ?? `${e.def.name} - (${new Date().toISOString().replace('T', ' ').slice(0, 19)})`;
    if (cpName.length === 0 || cpName.length > MAX_CHECKPOINT_NAME || /[\u0000-\u001f]/.test(cpName)) {
      return fail(ReturnCode.InvalidParameter, `a checkpoint name must be 1 to ${MAX_CHECKPOINT_NAME} characters without control characters`);
    }
    const state = e.state;
    const live = state === EnabledState.Running || state === EnabledState.Paused;
    if (!live && state !== EnabledState.Off && state !== EnabledState.Saved) {
      return fail(
        ReturnCode.InvalidState,
        `cannot checkpoint a VM that is ${stateName(state)}${isTransitional(state) ? ' (an operation is in progress)' : ''}`,
      );
    }
    const settings = structuredClone(e.def);
    const frozen = writableDisks(settings.devices).map((s) => s.path);
    checkCheckpointable(frozen);
    // A running VM's worker makes its children itself, once it has closed the files they build on.
    const leaves = live ? childNames(frozen, id) : makeChildren(frozen, id);
    const savedState = live || state === EnabledState.Saved ? this.store.savedStatePath(e.def.id, id) : null;
    let pauseMs: number | undefined;
    try {
      if (state === EnabledState.Saved) {
        // The saved VM's memory was taken with its disks as they are now: the frozen files.
        this.store.save(tree); // the directory exists before the copy
        copyFileSync(this.host.paths.savedState(e.def.id), savedState!);
      } else if (live) {
        this.store.save(tree);
        pauseMs = (
          await this.host.checkpointRunning(
            e,
            savedState!,
            frozen.map((from, i) => ({ from, to: leaves[i] })),
          )
        ).pauseMs;
      }
      this.host.replaceDefinition(
        e,
        { ...e.def, devices: withDiskPaths(e.def.devices, leaves) },
        `checkpoint ${cpName}: drives moved to new differencing disks`,
      );
    } catch (err) {
      if (!(live && (await this.completedUnanswered(e, err, savedState!, leaves)))) {
        // Undone: the worker is back on the old files (it says so by failing), the new ones go.
        for (const f of leaves) rmSync(f, { force: true });
        if (savedState) rmSync(savedState, { force: true });
        throw err;
      }
      this.host.replaceDefinition(
        e,
        { ...e.def, devices: withDiskPaths(e.def.devices, leaves) },
        `checkpoint ${cpName}: the worker had moved the drives before it was stopped`,
      );
    }
    const record: CheckpointRecord = { id, name: cpName, parentId: tree.currentId, createdAt: new Date().toISOString(), settings, savedState };
    const next: CheckpointTree = { ...tree, checkpoints: [...tree.checkpoints, record], currentId: id, createdFiles: [...tree.createdFiles, ...leaves] };
    this.store.save(next);
    this.log(
      e,
      `checkpoint ${cpName} (${id}) taken${savedState ? ' with saved state' : ', disks only'}${pauseMs !== undefined ? `; the VM was paused ${pauseMs.toFixed(1)} ms` : ''}`,
    );
    return { returnValue: ReturnCode.Completed, checkpoint: view(e, next, record), ...(pauseMs !== undefined ? { pauseMs } : {}) };
  }

  /**
   * A running VM's checkpoint whose answer never came (the worker timed out or went away): the
   * worker may have switched its drives and written to the children. It is stopped, then the
   * files decide: the saved state (written whole or not at all, before any switch) and every
   * child present mean the checkpoint was taken — it is kept and the drives stay on the children;
   * otherwise no drive was switched, and the checkpoint's files go.
   */
  private async completedUnanswered(e: VmEntry, err: unknown, savedState: string, leaves: string[]): Promise<boolean> {
    const code = (err as { code?: string }).code;
    if (code !== 'VMWP_ERR_TIMEOUT' && code !== 'VMWP_ERR_GONE') return false;
    if (e.state !== EnabledState.Off) await this.host.turnOff(e);
    const whole = existsSync(savedState) && leaves.every((f) => existsSync(f));
    this.log(
      e,
      `the worker did not answer the checkpoint (${(err as Error).message}); the VM was turned off and the checkpoint ${whole ? 'is kept: its files are whole' : 'is dropped: no drive was switched'}`,
    );
    return whole;
  }

  private async applyNow(e: VmEntry, checkpoint: string): Promise<CheckpointResult> {
    const tree = this.store.load(e.def.id);
    const c = findCheckpoint(tree, checkpoint);
    if ('error' in c) return fail(ReturnCode.InvalidParameter, c.error);
    if (isTransitional(e.state) && e.state !== EnabledState.Unknown)
      return fail(ReturnCode.InvalidState, `cannot apply a checkpoint to a VM that is ${stateName(e.state)} (an operation is in progress)`);
    if (e.state !== EnabledState.Off) {
      const r = await this.host.turnOff(e);
      if (r.returnValue !== ReturnCode.Completed) return fail(r.returnValue, `the VM could not be turned off to apply the checkpoint: ${r.error}`);
    }
    const oldLeaves = writableDisks(e.def.devices).map((s) => s.path);
    const frozen = writableDisks(c.settings.devices).map((s) => s.path);
    const leaves = makeChildren(frozen, c.id);
    try {
      if (c.savedState) copyFileSync(c.savedState, this.host.paths.savedState(e.def.id));
      this.host.replaceDefinition(
        e,
        { ...c.settings, id: e.def.id, name: e.def.name, devices: withDiskPaths(c.settings.devices, leaves) },
        `checkpoint ${c.name} applied`,
      );
    } catch (err) {
      for (const f of leaves) rmSync(f, { force: true });
      rmSync(this.host.paths.savedState(e.def.id), { force: true });
      throw err;
    }
    const referenced = new Set([...tree.checkpoints.flatMap((x) => writableDisks(x.settings.devices).map((s) => s.path))]);
    const orphans = oldLeaves.filter((f) => !referenced.has(f) && !leaves.includes(f));
    const next: CheckpointTree = {
      ...tree,
      currentId: c.id,
      createdFiles: [...tree.createdFiles, ...leaves],
      retainedFiles: [...new Set([...tree.retainedFiles, ...orphans])],
    };
    const { tree: collected, done, deferred } = this.collect(e, next);
    if (c.savedState) this.host.markSaved(e, `checkpoint ${c.name} applied; starting the VM continues from it`);
    this.log(e, `checkpoint ${c.name} (${c.id}) applied`);
    return { returnValue: ReturnCode.Completed, checkpoint: view(e, collected, collected.checkpoints.find((x) => x.id === c.id)!), done, deferred };
  }

  private async removeNow(e: VmEntry, checkpoint: string, subtree: boolean): Promise<CheckpointResult> {
    let tree = this.store.load(e.def.id);
    const c = findCheckpoint(tree, checkpoint);
    if ('error' in c) return fail(ReturnCode.InvalidParameter, c.error);
    const victims = subtree ? [c, ...descendants(tree, c.id)] : [c];
    for (const v of victims) {
      const files = writableDisks(v.settings.devices).map((s) => s.path);
      tree = withoutCheckpoint(tree, v.id);
      const referenced = new Set([
        ...tree.checkpoints.flatMap((x) => writableDisks(x.settings.devices).map((s) => s.path)),
        ...writableDisks(e.def.devices).map((s) => s.path),
      ]);
      tree = { ...tree, retainedFiles: [...new Set([...tree.retainedFiles, ...files.filter((f) => !referenced.has(f))])] };
      if (v.savedState) rmSync(v.savedState, { force: true });
    }
    const { done, deferred, live } = this.collect(e, tree, true);
    for (const m of live) {
      const r = await this.mergeRunning(e, m);
      done.push(...r.done);
      deferred.push(...r.deferred);
    }
    this.log(e, `checkpoint ${c.name} (${c.id}) removed${subtree ? ` with ${victims.length - 1} below it` : ''}`);
    return { returnValue: ReturnCode.Completed, done, deferred };
  }

  /**
   * Merges a file of the running VM's chain into its parent while the VM runs on: the drive's own
   * file (the worker's live-merge.ts) or one deeper in the chain (chain-merge.ts), recorded in
   * the tree before it starts like every merge: the collection after it finishes the record (the
   * child is gone: the drive and the tree name the parent; or the parent has the child's name)
   * or drops it (the child still opens against the parent: the chain is as it was).
   */
  private async mergeRunning(e: VmEntry, { file, child, childIdentity, repoint }: LiveMerge): Promise<{ done: string[]; deferred: string[] }> {
    const tree = this.store.load(e.def.id);
    this.store.save({ ...tree, pendingMerges: [...(tree.pendingMerges ?? []), { file, child, childIdentity, live: true, ...(repoint ? { repoint } : {}) }] });
    let outcome: string;
    let failed = false;
    const how = repoint ? `, and pointed ${repoint.join(', ')} at it,` : childIdentity ? ', which took its name,' : '';
    try {
      const { pauseMs } = await this.host.mergeRunning(e, child, file, repoint);
      outcome = `merged ${child} into ${file}${how} while the VM ran; its disk I/O paused ${pauseMs.toFixed(1)} ms for the switch`;
    } catch (err) {
      failed = true;
      outcome = `${file}: merging ${child} into it while the VM ran failed (${(err as Error).message}); ${repoint || childIdentity ? "the drive's chain is as it was" : `the drive stays on ${child}`}, and the merge is tried again at the next checkpoint change`;
    }
    // A VM that went off meanwhile has its merge done here, offline.
    const r = this.collect(e, this.store.load(e.def.id), e.state === EnabledState.Running || e.state === EnabledState.Paused);
    this.log(e, outcome);
    return failed
      ? { done: r.done, deferred: [outcome, ...r.deferred] }
      : {
          done: [
            outcome,
            ...r.done.filter((l) => l !== `merged ${child} into ${file}` && l !== `merged ${child} into ${file}, and pointed ${repoint?.join(', ')} at it`),
          ],
          deferred: r.deferred,
        };
  }

  /**
   * Saves the tree, collects unneeded files, saves the outcome (and the drives a merge renamed).
   * `live`: a running VM's drive files are merged by its worker (the caller runs `live`); otherwise
   * their merges wait, as any file in use does.
   */
  private collect(e: VmEntry, tree: CheckpointTree, live = false): { tree: CheckpointTree; done: string[]; deferred: string[]; live: LiveMerge[] } {
    this.store.save(tree);
    const running = live && (e.state === EnabledState.Running || e.state === EnabledState.Paused);
    const leaves = new Set(running ? writableDisks(e.def.devices).map((d) => resolve(d.path)) : []);
    const r = collectFiles(tree, e.def.devices, (t) => this.store.save(t), leaves);
    // The definition first: a tree without the pending merge but a drive on a deleted file would not start.
    if (JSON.stringify(r.devices) !== JSON.stringify(e.def.devices))
      this.host.replaceDefinition(e, { ...e.def, devices: r.devices }, "a drive's differencing disk was merged into its parent");
    this.store.save(r.tree);
    for (const line of r.done) this.log(e, line);
    for (const line of r.deferred) this.log(e, `left for later: ${line}`);
    return { tree: r.tree, done: r.done, deferred: r.deferred, live: r.live };
  }
}

function view(e: VmEntry, tree: CheckpointTree, c: CheckpointRecord): CheckpointView {
  return {
    id: c.id,
    name: c.name,
    vmId: e.def.id,
    vmName: e.def.name,
    parentId: c.parentId,
    createdAt: c.createdAt,
    current: tree.currentId === c.id,
    hasSavedState: c.savedState !== null,
    disks: writableDisks(c.settings.devices).map((s) => s.path),
    settings: c.settings,
  };
}
