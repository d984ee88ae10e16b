/**
 * npm run fuzz -- [--time s] [--target a,b] [--save] [--seed n] [--execs n] [--replay path]
 *
 * Runs each target in its own worker for the time given, starting from its committed corpus
 * (fuzz/corpus/<target>/) after replaying its regression inputs (fuzz/regressions/<target>/).
 * Findings are written to build/fuzz-findings/<target>/ (input, minimised input, report);
 * --save adds the inputs that found new coverage to the corpus; --minimise-corpus removes the
 * entries that add no coverage over the ones before them. Exits 1 on a new finding.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { inputName, readInputs } from './engine/corpus.ts';
import { PROJECT_ROOT, runSupervised, type SupervisedReport } from './engine/supervisor.ts';
import { TARGETS, targetModuleUrl } from './targets/index.ts';

const MAX_CORPUS = 256;

const program = new Command('fuzz')
  .option('--time <seconds>', 'fuzzing time per target', '30')
  .option('--target <names>', `comma-separated targets (${TARGETS.map((t) => t.name).join(', ')})`)
  .option('--save', 'save inputs that found new coverage into fuzz/corpus/<target>/')
  .option('--seed <n>', 'PRNG seed', String(Date.now() & 0x7fffffff))
  .option('--execs <n>', 'stop a target after this many mutated inputs')
  .option('--minimise-corpus', 'replay each corpus and delete the entries that add no coverage')
  .option('--replay <path>', 'run only the inputs in this file or directory (a finding to check), no mutation')
  .option('--slow-ms <ms>', 'an input that completes slower than this is a finding', '1000')
  .option('--hang-ms <ms>', 'an input still running after this long is a hang', '10000')
  .option('--memory-mb <mb>', "the worker's heap bound", '512')
  .parse();
const o = program.opts<{
  time: string;
  target?: string;
  save?: boolean;
  minimiseCorpus?: boolean;
  seed: string;
  execs?: string;
  replay?: string;
  slowMs: string;
  hangMs: string;
  memoryMb: string;
}>();

const wanted = o.target ? o.target.split(',').map((s) => s.trim()) : TARGETS.map((t) => t.name);
const unknown = wanted.filter((w) => !TARGETS.some((t) => t.name === w));
if (unknown.length) {
  console.error(`unknown target ${unknown.join(', ')}`);
  process.exit(2);
}

let failed = false;
const rows: string[][] = [['target', 'execs', 'execs/s', 'blocks', 'features', 'corpus', 'new', 'saved', 'findings']];
for (const t of TARGETS.filter((x) => wanted.includes(x.name))) {
  const corpusDir = join(PROJECT_ROOT, 'fuzz', 'corpus', t.name);
  let r: SupervisedReport;
  try {
    r = await runSupervised({
      targetModule: targetModuleUrl(t),
      exportName: 'createTarget',
      seed: Number(o.seed),
      timeMs: o.replay || o.minimiseCorpus ? 0 : Number(o.time) * 1000,
      maxExecs: o.execs ? Number(o.execs) : undefined,
      slowMs: Number(o.slowMs),
      hangMs: Number(o.hangMs),
      memoryMb: Number(o.memoryMb),
      maxInputBytes: 1 << 20,
      corpusDir: o.replay ?? corpusDir,
      regressionsDir: o.replay ? null : join(PROJECT_ROOT, 'fuzz', 'regressions', t.name),
      saveDir: o.save && !o.replay ? corpusDir : null,
      maxCorpus: MAX_CORPUS,
    });
  } catch (e) {
    console.error(`${t.name}: ${(e as Error).message}`);
    failed = true;
    continue;
  }
  if (o.minimiseCorpus && !o.replay && r.corpusKept.length > 0) {
    const keep = new Set(r.corpusKept);
    const all = readInputs(corpusDir);
    for (const entry of all) if (!keep.has(inputName(entry.bytes))) rmSync(join(corpusDir, entry.name));
    console.log(`${t.name}: corpus ${all.length} → ${keep.size} entries`);
  }
  let fresh = 0;
  for (const f of r.findings) {
    const known = t.knownFinding?.(f, Buffer.from(f.minimised).toString('latin1'));
    const dir = join(PROJECT_ROOT, 'build', 'fuzz-findings', t.name);
    mkdirSync(dir, { recursive: true });
    const base = join(dir, `${f.kind}-${inputName(f.minimised)}`);
    writeFileSync(`${base}.bin`, f.minimised);
    writeFileSync(`${base}.orig.bin`, f.input);
    writeFileSync(`${base}.txt`, `${f.kind}: ${f.summary}\n${known ? `known: ${known}\n` : ''}\n${f.stack ?? ''}\n`);
    console.log(`${t.name}: ${known ? 'KNOWN ' : ''}${f.kind}: ${f.summary}${known ? ` (${known})` : ''}\n  input: ${base}.bin`);
    if (!known) fresh++;
  }
  if (fresh) failed = true;
  rows.push([
    t.name,
    String(r.execs),
    String(r.execsPerSecond),
    String(r.blocks),
    String(r.features),
    String(r.corpusSize),
    String(r.newInputs),
    String(r.saved),
    String(r.findings.length),
  ]);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
for (const row of rows) console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
process.exit(failed ? 1 : 0);
