/**
 * Saved-state files (root-partition/vmwp/saved-state-file.ts): the records after a valid header
 * (magic, version, this configuration's hash), as a file on disk read back by readSavedState
 * into 16 KiB of guest memory. The input is a list of record bodies (u16 length, body), each
 * framed here with its true length and CRC-32C, so mutations reach the record decoding and
 * validation behind the checksums (a bad checksum is covered by the unit tests). The declared
 * refusal is SavedStateError; anything else, or guest memory written outside its bounds, is a bug.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '../../root-partition/vmwp/crc32c.ts';
import type { PartitionSnapshot } from '../../root-partition/vmwp/partition-snapshot.ts';
import { configurationHash, readSavedState, SavedStateError, writeSavedState } from '../../root-partition/vmwp/saved-state-file.ts';
import type { FuzzTarget } from '../engine/target.ts';

const HEADER_BYTES = 52;
const MEMORY = 16 * 1024;

function snapshot(vpCount: number): PartitionSnapshot {
  return {
    vpCount,
    imagePreparation: 'p',
    guestOsId: '9223372036854775809',
    hypercallMsr: '4097',
    referenceTicks: 12345,
    vps: Array.from({ length: vpCount }, (_, vp) => ({
      vp,
      pendingVectors: [0x30],
      scontrol: 1,
      simp: '1048577',
      siefp: '0',
      sint: Array.from({ length: 16 }, () => '65536'),
      timers: [0, 1, 2, 3].map((index) => ({ index, config: '0', count: '0', due: -1, messagePending: false })),
      registers: [{ name: 0x00020010, value: new Uint8Array(16) }],
      queuedMessages: [],
    })),
  };
}

export function createTarget(): FuzzTarget {
  const dir = mkdtempSync(join(tmpdir(), 'tsvisor-fuzz-saved-'));
  const file = join(dir, 'vm.vsv');
  const hash = configurationHash({ vmId: '00000000-0000-4000-8000-000000000001', memoryBytes: MEMORY, vpCount: 1, image: Uint8Array.of(0, 97, 115, 109) });
  const header = readHeader();
  const memory = new Uint8Array(MEMORY);

  function readHeader(): Buffer {
    const seed = join(dir, 'seed.vsv');
    writeSavedState(seed, hash, { ...snapshot(1), devices: [], memory: new Uint8Array(MEMORY) });
    return readFileSync(seed).subarray(0, HEADER_BYTES);
  }

  /** A file's records as the target's input: u16 body length, body (framing and CRC dropped). */
  function unframed(file: Buffer): Uint8Array {
    const parts: Buffer[] = [];
    for (let at = HEADER_BYTES; at + 8 <= file.length; ) {
      const length = file.readUInt32LE(at);
      const body = file.subarray(at + 8, at + 8 + length);
      const len = Buffer.alloc(2);
      len.writeUInt16LE(Math.min(body.length, 0xffff));
      parts.push(len, body.subarray(0, 0xffff));
      at += 8 + length;
    }
    return new Uint8Array(Buffer.concat(parts));
  }

  /** The input's record bodies, each framed with its true length and CRC-32C. */
  function framed(input: Uint8Array): Buffer {
    const parts: Buffer[] = [header];
    for (let at = 0; at + 2 <= input.length; ) {
      const length = input[at]! | (input[at + 1]! << 8);
      const body = Buffer.from(input.subarray(at + 2, at + 2 + length));
      const f = Buffer.alloc(8);
      f.writeUInt32LE(body.length, 0);
      f.writeUInt32LE(crc32c(body), 4);
      parts.push(f, body);
      at += 2 + length;
    }
    return Buffer.concat(parts);
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
      writeSavedState(seed, hash, { ...snapshot(1), devices: [{ name: 'uart0', version: 1, state: Uint8Array.of(9, 8, 7) }], memory: m });
      return [unframed(readFileSync(seed))];
    },
    run(input) {
      writeFileSync(file, framed(input));
      readSavedState(file, hash, memory);
    },
    isExpectedError: (e) => e instanceof SavedStateError,
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
