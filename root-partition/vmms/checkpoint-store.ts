/**
 * Checkpoint trees on disk, one directory per VM under the data directory:
 *
 *   checkpoints/<vm id>/tree.json          the tree (checkpoint-tree.ts), written atomically
 *   checkpoints/<vm id>/<checkpoint>.vmrs  the saved state of a checkpoint of a running VM
 *
 * A tree that does not parse or validate is refused with its path: checkpoints of that VM cannot
 * be listed, taken, applied or removed until the operator repairs or removes the file, and
 * nothing is deleted on the strength of a damaged file.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../host/atomic-file.ts';
import { emptyTree, treeProblems, type CheckpointTree } from './checkpoint-tree.ts';
import { validateDefinition } from './vm-definition.ts';

export class CheckpointStoreError extends Error {
  readonly code = 'VMMS_ERR_CHECKPOINT_STORE';
}

export class CheckpointStore {
  constructor(readonly root: string) {}

  dir(vmId: string): string {
    return join(this.root, vmId);
  }

  treePath(vmId: string): string {
    return join(this.dir(vmId), 'tree.json');
  }

  savedStatePath(vmId: string, checkpointId: string): string {
    return join(this.dir(vmId), `${checkpointId}.vmrs`);
  }

  load(vmId: string): CheckpointTree {
    const file = this.treePath(vmId);
    if (!existsSync(file)) return emptyTree(vmId);
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new CheckpointStoreError(`${file}: not valid JSON (${(e as Error).message}); repair or remove it`);
    }
    const problems = treeProblems(value, vmId);
    if (problems.length) throw new CheckpointStoreError(`${file}: invalid checkpoint tree: ${problems.join('; ')}`);
    const tree = value as CheckpointTree;
    for (const c of tree.checkpoints) validateDefinition(c.settings, `${file}: checkpoint ${c.id}`);
    return tree;
  }

  save(tree: CheckpointTree): void {
    mkdirSync(this.dir(tree.vmId), { recursive: true });
    writeFileAtomic(this.treePath(tree.vmId), JSON.stringify(tree, null, 2) + '\n');
  }

  /** The VM is removed: its tree and saved states go (its disk files are the operator's). */
  remove(vmId: string): void {
    rmSync(this.dir(vmId), { recursive: true, force: true });
  }
}
