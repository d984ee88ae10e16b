/**
 * `tsvisor sdk new` end to end: the CLI scaffolds a project into a temporary directory, and the
 * project's own test command (`npm test`: this repository's vitest, the SDK by relative path)
 * builds its guest image and passes against the real host side. Each project run takes a few
 * seconds (compiler start-up, one guest boot).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { guidToBytes } from '../../vmbus/protocol/guid.ts';
import { guidWireBytes, scaffoldProject } from '../../root-partition/sdk/scaffold.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'tsvisor-sdk-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, CI: '', NO_COLOR: '1', FORCE_COLOR: '0' } });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('tsvisor sdk new', () => {
  it('scaffolds a device project (VSP, VSC guest, test) whose own npm test passes', async () => {
    const dir = join(work, 'my-device');
    const made = await run(process.execPath, [join(ROOT, 'bin/tsvisor.mjs'), 'sdk', 'new', dir, '--device', 'counter'], ROOT);
    expect(made.code, made.out).toBe(0);
    for (const f of ['package.json', 'guest/main.ts', 'guest/counter-protocol.ts', 'host/counter-vsp.ts', 'host/counter-protocol.ts', 'test/counter.test.ts']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    expect(pkg.devDependencies.tsvisor).toMatch(/^file:(\.\.\/)+/);
    const test = await run('npm', ['test', '--silent'], dir);
    expect(test.code, test.out).toBe(0);
    expect(test.out).toMatch(/Tests\s+1 passed/);
    expect(existsSync(join(dir, 'build/guest.wasm'))).toBe(true);
    // The host side typechecks with the repository's TypeScript: with one type error put in, that
    // error is the only one reported (one compiler run shows both that the error is caught and
    // that the rest of the project is clean).
    const vsp = join(dir, 'host/counter-vsp.ts');
    writeFileSync(vsp, readFileSync(vsp, 'utf8').replace('this.requests++;', 'this.requests = "many";'));
    const broken = await run('npm', ['run', 'typecheck', '--silent'], dir);
    expect(broken.code).not.toBe(0);
    expect(broken.out.match(/error TS\d+/g), broken.out).toEqual(['error TS2322']);
    expect(broken.out).toMatch(/host\/counter-vsp\.ts\(\d+,\d+\): error TS2322/);
  }, 400_000);

  it('scaffolds a guest project with the integration services whose own npm test passes', async () => {
    const dir = join(work, 'my-guest');
    scaffoldProject(dir, { template: 'guest' });
    const test = await run('npm', ['test', '--silent'], dir);
    expect(test.code, test.out).toBe(0);
    expect(test.out).toMatch(/Tests\s+1 passed/);
  }, 180_000);

  it('names the device after the directory unless told otherwise', () => {
    const files = scaffoldProject(join(work, 'Thermo-Meter2'));
    expect(files).toEqual(expect.arrayContaining(['host/thermometer2-vsp.ts', 'guest/thermometer2-protocol.ts', 'test/thermometer2.test.ts', 'tsconfig.json']));
    expect(readFileSync(join(work, 'Thermo-Meter2', 'host/thermometer2-vsp.ts'), 'utf8')).toContain('export class Thermometer2Vsp implements Vsp');
    expect(scaffoldProject(join(work, '42'))).toContain('host/ping-vsp.ts');
  });

  it('refuses a directory with files in it, a bad device name, and an unknown template', () => {
    const dir = join(work, 'busy');
    mkdirSync(dir);
    writeFileSync(join(dir, 'keep.txt'), 'mine');
    expect(() => scaffoldProject(dir)).toThrow(/is not empty/);
    expect(() => scaffoldProject(join(work, 'x'), { device: 'Bad-Name' })).toThrow(/lower-case/);
    expect(() => scaffoldProject(join(work, 'y'), { template: 'os' as 'guest' })).toThrow(/unknown template/);
    expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('mine');
  });

  it('writes interface GUIDs in VMBus wire layout', () => {
    const g = 'a7b3d43e-9b0c-4c62-8f3a-5e6d2c1b0e11';
    expect(guidWireBytes(g)).toEqual([...guidToBytes(g)!]);
  });
});
