/**
 * Child process of base-merge-crash.test.ts: runs one checkpoint collection (collectFiles) over
 * the files and tree the test made, saving the tree to its file at every step as VMMS does
 * (write a copy, rename it over). TSVISOR_VHDX_FAULT_POINT kills it at a step of the merge.
 *
 * argv: <state.json> holding { tree, devices, treeFile }
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { collectFiles } from '../../root-partition/vmms/checkpoint-files.ts';

const { tree, devices, treeFile } = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const save = (t: unknown) => {
  writeFileSync(`${treeFile}.new`, JSON.stringify(t));
  renameSync(`${treeFile}.new`, treeFile);
};
save(tree);
const r = collectFiles(tree, devices, save);
save(r.tree);
process.stdout.write(JSON.stringify({ done: r.done, deferred: r.deferred }));
