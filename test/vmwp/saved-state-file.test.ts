/** The saved-state file format: sparse memory, header checks, truncation, records. */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configurationHash, readSavedState, SavedStateError, writeSavedState } from '../../root-partition/vmwp/saved-state-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-ss-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = { vmId: '00000000-0000-4000-8000-000000000001', memoryBytes: 1 << 20, vpCount: 1, image: new Uint8Array([0, 97, 115, 109]) };
const hash = configurationHash(config);

function sampleMemory(): Uint8Array {
  const m = new Uint8Array(new SharedArrayBuffer(1 << 20));
  m[0] = 1; // page 0
  m.fill(7, 4096 * 10, 4096 * 13); // pages 10..12: one run
  m[(1 << 20) - 1] = 9; // last page
  return m;
}

describe('saved-state file', () => {
  const path = join(dir, 'a.vmrs');
  const control = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);

  it('round-trips control block, reference time, device records and memory, writing only non-zero pages', () => {
    const mem = sampleMemory();
    const summary = writeSavedState(path, hash, { control, vpCount: 1, referenceTicks: 123_456_789_012, devices: [{ name: 'pic', version: 1, state: new Uint8Array([1, 2]) }], memory: mem });
    expect(summary).toMatchObject({ pagesWritten: 5, pageRuns: 3 });
    expect(statSync(path).size).toBe(summary.bytes);
    expect(summary.bytes).toBeLessThan(6 * 4096);
    const back = new Uint8Array(1 << 20).fill(0xee); // restore zeroes what the file leaves out
    const r = readSavedState(path, hash, back);
    expect(r).toMatchObject({ vpCount: 1, referenceTicks: 123_456_789_012, devices: [{ name: 'pic', version: 1 }] });
    expect(Buffer.from(r.control).equals(Buffer.from(control))).toBe(true);
    expect(Buffer.from(back).equals(Buffer.from(mem))).toBe(true);
  });

  it('names the reason when it refuses a file', () => {
    const mem = new Uint8Array(1 << 20);
    const other = configurationHash({ ...config, memoryBytes: 2 << 20 });
    const code = (fn: () => unknown) => { try { fn(); return 'accepted'; } catch (e) { return (e as SavedStateError).code; } };
    expect(code(() => readSavedState(path, other, mem))).toBe('SAVED_STATE_CONFIGURATION');
    const bytes = readFileSync(path);
    writeFileSync(join(dir, 'magic'), Buffer.concat([Buffer.from('NOTSAVED'), bytes.subarray(8)]));
    expect(code(() => readSavedState(join(dir, 'magic'), hash, mem))).toBe('SAVED_STATE_NOT_A_FILE');
    const v9 = Buffer.from(bytes);
    v9.writeUInt32LE(9, 8);
    writeFileSync(join(dir, 'v9'), v9);
    expect(() => readSavedState(join(dir, 'v9'), hash, mem)).toThrow(/format version 9; this tsvisor reads version 1/);
    writeFileSync(join(dir, 'short'), bytes.subarray(0, bytes.length - 10));
    expect(() => readSavedState(join(dir, 'short'), hash, mem)).toThrow(/ends inside the record/);
    expect(code(() => readSavedState(path, hash, new Uint8Array(2 << 20)))).toBe('SAVED_STATE_CONFIGURATION');
  });

  it('binds the configuration hash to the VM id, memory, VP count and image bytes', () => {
    const variants = [
      { ...config, vmId: '00000000-0000-4000-8000-000000000002' },
      { ...config, memoryBytes: 2 << 20 },
      { ...config, vpCount: 2 },
      { ...config, image: new Uint8Array([0, 97, 115, 110]) },
    ];
    for (const c of variants) expect(configurationHash(c).equals(hash)).toBe(false);
    expect(configurationHash({ ...config }).equals(hash)).toBe(true);
  });
});
