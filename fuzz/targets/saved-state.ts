/**
 * Saved-state files (root-partition/vmwp/saved-state-file.ts): the records after a valid header
 * (magic, version, this configuration's hash), as a file on disk read back by readSavedState
 * into 16 KiB of guest memory. The declared refusal is SavedStateError; anything else, or
 * guest memory written outside its bounds, is a bug.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configurationHash, readSavedState, SavedStateError, writeSavedState } from '../../root-partition/vmwp/saved-state-file.ts';
import type { FuzzTarget } from '../engine/target.ts';

const HEADER_BYTES = 48;
const MEMORY = 16 * 1024;

export function createTarget(): FuzzTarget {
  const dir = mkdtempSync(join(tmpdir(), 'tsvisor-fuzz-saved-'));
  const file = join(dir, 'vm.vsv');
  const hash = configurationHash({ vmId: '00000000-0000-4000-8000-000000000001', memoryBytes: MEMORY, vpCount: 1, image: Uint8Array.of(0, 97, 115, 109) });
  const header = readHeader();
  const memory = new Uint8Array(MEMORY);

  function readHeader(): Buffer {
    const seed = join(dir, 'seed.vsv');
    writeSavedState(seed, hash, { control: new Uint8Array(8), vpCount: 1, referenceTicks: 1, devices: [], memory: new Uint8Array(MEMORY) });
    return readFileSync(seed).subarray(0, HEADER_BYTES);
  }

  return {
    name: 'saved-state',
    description: 'Saved-state file records after a valid header, read back into guest memory',
    maxInputBytes: 16384,
    seeds: () => {
      const m = new Uint8Array(MEMORY);
      m.fill(0x11, 0x1000, 0x1800);
      m[MEMORY - 1] = 7;
      const seed = join(dir, 'seed.vsv');
      writeSavedState(seed, hash, { control: Uint8Array.of(1, 2, 3, 4), vpCount: 2, referenceTicks: 12345, devices: [{ name: 'uart0', version: 1, state: Uint8Array.of(9, 8, 7) }], memory: m });
      const full = readFileSync(seed).subarray(HEADER_BYTES);
      return [new Uint8Array(full)];
    },
    run(input) {
      writeFileSync(file, Buffer.concat([header, input]));
      readSavedState(file, hash, memory);
    },
    isExpectedError: (e) => e instanceof SavedStateError,
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
