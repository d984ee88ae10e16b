/**
 * Code comments, docs, test vectors and scripts cite public sources; none points into a document
 * outside the project, which readers cannot open (test/helpers/outside-documents.ts). Reads
 * every file git tracks or would track (not ignored), so a pointer added anywhere fails here with
 * its file and line.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { notePointers, pointsIntoNotes } from './helpers/outside-documents.ts';

const ROOT = resolve(import.meta.dirname, '..');
/** The patterns and this file's samples of them, and fuzz inputs (data, not text anyone reads). */
const EXEMPT = (path: string): boolean =>
  path === 'test/helpers/outside-documents.ts' || path === 'test/public-sources.test.ts' || path.startsWith('fuzz/corpus/');

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\0')
    .filter(Boolean);
}

describe('public sources only', () => {
  it("recognises each kind of pointer into the notes, and not the project's own references", () => {
    const pointers = [
      '// VMBus ring buffer layout (reference/hyperv-protocol-facts.md §4; Linux',
      '(Linux hv_kvp; hyperv-protocol-facts §6)',
      '(reference network-protocol-facts §2–§4)',
      '/** EnabledState (management-model.md §1). */',
      '* cim-xml.md §7.1 "gc": CreationClassName',
      'see vhdx.md §5.7',
      'cpu-control.md §2',
      'assemblyscript-guests.md §3.3',
      'costs more (performance-limits.md B1)',
      'about performance-limits B5\'s "spin 2000"',
      'relative: ../shared/reference/cim-xml.md',
      'plain HTTP on loopback only (DESIGN.md §6).',
      'process. DESIGN §7; the guest platform',
      'STYLE.md "a test fails on an import"',
      '(reference §3.6 step 10)',
      'the Gen1 layout of the reference (§7.1)',
      'a core is free (reference B2/B6)',
      '**Targets** (Part C of the reference; reported',
      '(reference Part C)',
    ];
    const own = [
      'docs/guest-abi.md §9',
      '(`docs/vmbus.md` §4)',
      'the reference time (100 ns)',
      'VALUE.REFERENCE',
      'bench/results/reference.json',
      'the reference guests ping each other',
      'XML 1.0 §4.6, §2.2',
      '[MS-VHDX] 2.3 Log',
      'TLFS HV_PARTITION_PRIVILEGE_MASK',
      'docs/vhdx.md',
      'shared memory',
      'cim-xml/',
      'the reference run above',
      'DSP0200 "Status codes"',
    ];
    expect(pointers.filter((t) => !pointsIntoNotes(t))).toEqual([]);
    expect(own.filter((t) => pointsIntoNotes(t))).toEqual([]);
    expect(notePointers('a\nsee cim-xml.md §5\nb')).toEqual([{ line: 2, text: 'see cim-xml.md §5' }]);
  });

  it('no tracked file points into the notes', () => {
    const files = trackedFiles();
    expect(files.length).toBeGreaterThan(100);
    expect(files).toContain('test/public-sources.test.ts');
    const found: string[] = [];
    for (const path of files) {
      const full = join(ROOT, path);
      if (EXEMPT(path) || !existsSync(full)) continue;
      const bytes = readFileSync(full);
      if (bytes.includes(0)) continue; // binary (images)
      for (const p of notePointers(bytes.toString('utf8'))) found.push(`${path}:${p.line}: ${p.text}`);
    }
    expect(found).toEqual([]);
  });
});
