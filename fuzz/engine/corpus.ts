/**
 * A target's corpus on disk: one small file per input, named by the first 16 hex digits of its
 * SHA-1 so the same input is never stored twice, at most `limit` files per directory.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const inputName = (input: Uint8Array): string => createHash('sha1').update(input).digest('hex').slice(0, 16);

/** Every input file under `dir` (none when it does not exist), in name order. */
export function readInputs(dir: string): { name: string; bytes: Uint8Array }[] {
  if (!existsSync(dir)) return [];
  if (statSync(dir).isFile()) return [{ name: dir, bytes: new Uint8Array(readFileSync(dir)) }];
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.') && !f.endsWith('.md') && statSync(join(dir, f)).isFile())
    .sort()
    .map((f) => ({ name: f, bytes: new Uint8Array(readFileSync(join(dir, f))) }));
}

/** Writes `input` into `dir` unless it is there already or the directory is full; returns whether written. */
export function saveInput(dir: string, input: Uint8Array, limit: number): boolean {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, inputName(input));
  if (existsSync(file)) return false;
  if (readdirSync(dir).length >= limit) return false;
  writeFileSync(file, input);
  return true;
}
