/**
 * What the command tree generates for the shell and man(1): completions run in real bash and zsh
 * (VM names come from a real `tsvisor serve`), the man page renders in groff without a warning and
 * names every command, and the systemd unit passes `systemd-analyze verify`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../root-partition/cli/program.ts';
import { allCommands, commandTree } from '../../root-partition/cli/command-tree.ts';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import { MiB, testImages, VmmsFixture } from '../vmms/vmms-fixture.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'tsvisor.mjs');
const work = mkdtempSync(join(tmpdir(), 'tsv-help-'));
// `tsvisor` on PATH, as an installed command is (the completion calls it for VM names).
symlinkSync(BIN, join(work, 'tsvisor'));
const PATH = `${work}:${process.env.PATH}`;
const fx = new VmmsFixture();
afterAll(async () => {
  await fx.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const tsvisor = (...args: string[]) => execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** The candidates the completion function offers for each of `cases` (the last word being completed), in one shell. */
function completeAll(shell: 'bash' | 'zsh', script: string, cases: string[][]): string[][] {
  const file = join(work, `c.${shell}`);
  writeFileSync(file, script);
  const prelude = shell === 'zsh' ? 'autoload -U +X compinit && compinit -u -C; ' : '';
  const runs = cases
    .map(
      (words) =>
        `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _tsvisor; printf '%s\\n' "\${COMPREPLY[@]}"; echo '--end--'`,
    )
    .join('; ');
  const r = spawnSync(shell, ['-c', `${prelude}source ${file}; ${runs}`], { encoding: 'utf8', cwd: work, env: { ...process.env, PATH, HOME: work } });
  expect(r.stderr).toBe('');
  return r.stdout
    .split('--end--\n')
    .slice(0, cases.length)
    .map((out) => out.split('\n').filter(Boolean));
}
const complete = (shell: 'bash' | 'zsh', script: string, words: string[]) => completeAll(shell, script, [words])[0];

describe('shell completion', () => {
  const bash = tsvisor('completion', 'bash');

  it('bash: commands at each level, options, paths after a file option, nothing after a value option', () => {
    expect(complete('bash', bash, ['tsvisor', 'vm', 'st'])).toEqual(['start', 'stop']);
    expect(complete('bash', bash, ['tsvisor', 'bench', 'io', '--q'])).toEqual(['--quick']);
    expect(complete('bash', bash, ['tsvisor', 'run', '--disk', 'c.'])).toEqual(['c.bash']);
    // --data-dir takes a value: the word after it is not a command, so `vm` is still where we are.
    expect(complete('bash', bash, ['tsvisor', 'vm', '--data-dir', 'start', 'sta'])).toEqual(['start']);
    expect(complete('bash', bash, ['tsvisor', 'run', '--memory', ''])).toEqual([]);
    expect(complete('bash', bash, ['tsvisor', 'completion', ''])).toEqual(expect.arrayContaining(['c.bash']));
  });

  it('every command and option of the tree is offered where it belongs', () => {
    const parents = allCommands(commandTree(buildProgram())).filter((c) => c.subcommands.length);
    const offered = completeAll(
      'bash',
      bash,
      parents.map((c) => [...c.path, '']),
    );
    expect(offered).toEqual(parents.map((c) => c.subcommands.map((s) => s.path.at(-1))));
    expect(complete('bash', bash, ['tsvisor', 'serve', '--'])).toEqual(expect.arrayContaining(['--data-dir', '--cim-port', '--storage-root', '--help']));
  });

  it.skipIf(!has('zsh'))('zsh: the same function through bashcompinit (zsh then matches the typed prefix itself)', () => {
    const [vm, afterValue, io] = completeAll('zsh', tsvisor('completion', 'zsh'), [
      ['tsvisor', 'vm', 'st'],
      ['tsvisor', 'vm', '--data-dir', 'x', 'st'],
      ['tsvisor', 'bench', 'io', '--q'],
    ]);
    expect(vm).toEqual(expect.arrayContaining(['start', 'stop', 'list']));
    expect(vm).not.toContain('bench');
    expect(afterValue).toEqual(vm);
    expect(io).toContain('--quick');
    expect(io).not.toContain('--memory');
  });

  it('an unknown shell is refused in words', () => {
    const r = spawnSync(process.execPath, [BIN, 'completion', 'fish'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no completion for "fish": choose bash or zsh/);
  });

  it('VM names come from the running service of the --data-dir on the command line', { timeout: 120_000 }, async () => {
    const dataDir = fx.dataDir();
    await fx.daemon(dataDir);
    const c = await VmmsClient.connect(dataDir);
    try {
      const { hello } = await testImages();
      for (const name of ['web-1', 'web-2', 'db']) await c.call('new', { name, memoryBytes: 16 * MiB, imagePath: hello });
    } finally {
      c.close();
    }
    expect(complete('bash', bash, ['tsvisor', 'vm', '--data-dir', dataDir, 'start', 'web'])).toEqual(['web-1', 'web-2']);
    expect(complete('bash', bash, ['tsvisor', 'vm', '--data-dir', dataDir, 'show', '']).sort()).toEqual(['db', 'web-1', 'web-2']);
  });
});

describe('man page', () => {
  it.skipIf(!has('groff'))('renders without a warning and documents every command and option', () => {
    const page = tsvisor('man');
    const file = join(work, 'tsvisor.1');
    writeFileSync(file, page);
    const lint = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', file], { encoding: 'utf8' });
    expect(lint.stderr).toBe('');
    const text = execFileSync('groff', ['-man', '-Tascii', '-P', '-cbou', file], { encoding: 'utf8' })
      .replace(/-\n\s+/g, '-')
      .replace(/\s+/g, ' ');
    expect(text).toMatch(/^ ?TSVISOR\(1\)/);
    for (const c of allCommands(commandTree(buildProgram())).slice(1)) {
      expect(text).toContain(c.path.slice(1).join(' '));
      for (const o of c.options) expect(text).toContain(o.long ?? o.short!);
    }
  });
});

describe('systemd unit', () => {
  it.skipIf(!has('systemd-analyze'))('passes systemd-analyze verify; odd user names and paths are refused', () => {
    const unit = join(work, 'tsvisor.service');
    writeFileSync(unit, tsvisor('service', 'unit', '--data-dir', join(work, 'svc'), '--storage-root', work));
    const v = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    for (const [opt, value, msg] of [
      ['--user', 'Root', /not a valid user name/],
      ['--data-dir', '/srv/vm %h', /without spaces, quotes, %/],
    ] as const) {
      const r = spawnSync(process.execPath, [BIN, 'service', 'unit', opt, value], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(msg);
    }
  });
});
