/**
 * The README's quick start, word for word: the two fenced blocks under "Quick start" are read
 * from README.md, the first (`npx tsvisor serve`) started as the service, and each line of the
 * second run in order through a shell, exactly as written, in the repository. A temporary
 * XDG_DATA_HOME keeps the service's data away from the user's own. Every line must succeed; the
 * outputs that show the guest running, reporting and shutting down are checked.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const dataHome = mkdtempSync(join(tmpdir(), 'tsv-rd-'));
const env = { ...process.env, XDG_DATA_HOME: dataHome };
let service: ChildProcess | undefined;

/** The fenced sh blocks of the README section that starts with `heading`. */
export function quickStartBlocks(readme: string, heading: string): string[][] {
  const start = readme.indexOf(heading);
  if (start < 0) throw new Error(`README.md has no "${heading}" section`);
  const section = readme.slice(start, readme.indexOf('\n## ', start + heading.length));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
    m[1]!
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#')),
  );
}

function sh(line: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', line], { cwd: ROOT, env, timeout: 300_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

afterAll(async () => {
  if (service && service.exitCode === null) {
    const exited = new Promise((r) => service!.once('exit', r));
    process.kill(-service.pid!, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    try {
      process.kill(-service.pid!, 'SIGKILL');
    } catch {
      /* the group is gone */
    }
  }
  rmSync(dataHome, { recursive: true, force: true });
}, 60_000);

it('the README quick start works as written', async () => {
  const blocks = quickStartBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'), '## Quick start');
  expect(blocks.length).toBe(2);
  const [serve, commands] = blocks as [string[], string[]];
  expect(serve).toEqual(['npx tsvisor serve']);

  // The service, in its own process group so that it and npx's wrapper go together.
  service = spawn('/bin/sh', ['-c', `exec ${serve[0]}`], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  service.stdout!.on('data', (c) => {
    out += c;
  });
  service.stderr!.on('data', (c) => {
    out += c;
  });
  await vi
    .waitFor(
      () => {
        if (!out.includes('tsvisor: serving') && service!.exitCode === null) throw new Error('not serving yet');
      },
      { timeout: 120_000, interval: 100 },
    )
    .catch(() => {});
  expect(out).toContain(`tsvisor: serving ${join(dataHome, 'tsvisor')}`);

  const outputs: string[] = [];
  for (const line of commands) {
    const r = await sh(line);
    outputs.push(r.stdout);
    expect({ line, code: r.code, stderr: r.stderr }).toEqual({ line, code: 0, stderr: '' });
  }
  const at = (verb: string) => outputs[commands.findIndex((l) => l.includes(verb))]!;
  expect(at('vm new')).toMatch(/^web: defined, id [0-9a-f-]{36}\n$/);
  expect(at('vm start')).toBe('web: started (Running)\n');
  expect(at('vm wait')).toBe('web: heartbeat OK\n');
  expect(at('vm list')).toMatch(/\nweb\s+Running\s+1\s+\d+\s+32\s/);
  expect(at('vm kvp')).toMatch(/intrinsic\s+OSName\s+tsvisor reference guest/);
  expect(at('vm stop')).toBe('web: shut down (Off)\n');
  expect(at('vm rm')).toBe('web: removed\n');
}, 900_000);
