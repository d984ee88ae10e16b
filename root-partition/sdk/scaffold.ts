/**
 * `tsvisor sdk new <dir>`: writes a project that builds a guest image and tests it against the
 * real host side, out of the box. The project depends on this repository by relative path (its
 * package.json names it as a `file:` dependency, and its sources import the SDK through the same
 * relative path), and runs the repository's own tsx and vitest, so nothing is downloaded.
 *
 * Templates: `device` (default) — a synthetic device pair, VSP in TypeScript and VSC in the
 * guest, with a test; `guest` — a guest image with the integration services and a test.
 */
import { IMPORT_META_URL } from './templates-device.ts';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { SDK_ROOT } from './guest-image.ts';
import { deviceGuestMain, deviceGuestProtocol, deviceHostProtocol, deviceTest, deviceVsp } from './templates-device.ts';
import { guestOnlyMain, guestOnlyTest } from './templates-guest.ts';

export type TemplateName = 'device' | 'guest';

export interface TemplateContext {
  /** Device name: lower-case letters and digits, starting with a letter (file names). */
  name: string;
  Pascal: string;
  UPPER: string;
  /** The repository root relative to any first-level folder of the project (guest/, host/, test/). */
  sdk: string;
  /** The repository root relative to the project root. */
  sdkFromRoot: string;
  guid: string;
  instance: string;
  /** The interface GUID's 16 wire bytes (Data1/2/3 little-endian), as AssemblyScript array text. */
  guidWire: string;
}

export interface ScaffoldOptions {
  template?: TemplateName;
  /** Device name for the `device` template (default: the directory's name made a valid one, else "ping"). */
  device?: string;
  /** Write into a directory that already has files. */
  force?: boolean;
}

/** A GUID's wire layout: Data1 (u32), Data2 and Data3 (u16) little-endian, then 8 bytes as written. */
export function guidWireBytes(guid: string): number[] {
  const hex = guid.replace(/-/g, '');
  const b = Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
  return [b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.slice(8)];
}

function context(dir: string, device: string): TemplateContext {
  if (!/^[a-z][a-z0-9]*$/.test(device)) throw new Error(`device name ${JSON.stringify(device)}: use lower-case letters and digits, starting with a letter`);
  const guid = randomUUID();
  const rel = (from: string) => relative(from, SDK_ROOT).split('\\').join('/') || '.';
  return {
    name: device,
    Pascal: device[0]!.toUpperCase() + device.slice(1),
    UPPER: device.toUpperCase(),
    sdk: rel(join(dir, 'guest')),
    sdkFromRoot: rel(dir),
    guid,
    instance: randomUUID(),
    guidWire: guidWireBytes(guid)
      .map((x) => `0x${x.toString(16).padStart(2, '0')}`)
      .join(', '),
  };
}

/** `tsvisor sdk new thermometer` makes the thermometer device: the directory's name, lower-cased, letters and digits only. */
export function deviceNameOf(dir: string): string {
  const name = basename(resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .replace(/^[0-9]+/, '');
  return name || 'ping';
}

function packageJson(c: TemplateContext, dir: string): string {
  const pkg = {
    name: basename(dir)
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-'),
    version: '0.1.0',
    private: true,
    type: 'module',
    description: 'A tsvisor child-SDK project',
    scripts: {
      // This repository's tools, by relative path: nothing is installed into the project.
      build: `node ${c.sdkFromRoot}/node_modules/tsx/dist/cli.mjs build.ts`,
      test: `node ${c.sdkFromRoot}/node_modules/vitest/vitest.mjs run`,
      typecheck: `node ${c.sdkFromRoot}/node_modules/typescript/bin/tsc -p tsconfig.json`,
    },
    devDependencies: { tsvisor: `file:${c.sdkFromRoot}` },
  };
  return JSON.stringify(pkg, null, 2) + '\n';
}

function buildScript(c: TemplateContext): string {
  return `// Builds the guest image: guest/main.ts → build/guest.wasm (skipped when up to date).
import { buildGuestImage } from '${c.sdkFromRoot}/root-partition/sdk/guest-image.ts';

const built = await buildGuestImage(new URL('./guest/main.ts', ${IMPORT_META_URL}).pathname, new URL('./build/guest.wasm', ${IMPORT_META_URL}).pathname);
console.log(built ? 'build/guest.wasm built' : 'build/guest.wasm up to date');
`;
}

function vitestConfig(): string {
  return `// Plain object (no import of vitest/config), so the project needs no node_modules of its own.
// globals: describe/it/expect/beforeAll/afterEach without importing 'vitest'.
export default {
  test: { include: ['test/**/*.test.ts'], globals: true, testTimeout: 60_000, hookTimeout: 120_000, pool: 'forks' },
};
`;
}

/** The host side (VSP, tests, build script) typechecked with this repository's TypeScript and type packages. */
function hostTsconfig(_c: TemplateContext): string {
  return (
    JSON.stringify(
      {
        compilerOptions: {
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          allowImportingTsExtensions: true,
          skipLibCheck: true,
          esModuleInterop: true,
          resolveJsonModule: true,
          types: [],
          lib: ['ES2024', 'DOM'],
        },
        include: ['host/**/*.ts', 'test/**/*.ts', 'build.ts', 'types.d.ts'],
      },
      null,
      2,
    ) + '\n'
  );
}

/** The project has no node_modules of its own: Node's and vitest's global types come from the repository's. */
function typeReferences(c: TemplateContext): string {
  return `/// <reference path="${c.sdkFromRoot}/node_modules/@types/node/index.d.ts" />\n/// <reference path="${c.sdkFromRoot}/node_modules/vitest/globals.d.ts" />\n`;
}

function guestTsconfig(c: TemplateContext): string {
  return JSON.stringify({ extends: `${c.sdk}/node_modules/assemblyscript/std/assembly.json`, include: ['./**/*.ts'] }, null, 2) + '\n';
}

function readme(c: TemplateContext, template: TemplateName): string {
  const layout =
    template === 'device'
      ? `| \`host/${c.name}-protocol.ts\`, \`host/${c.name}-vsp.ts\` | the VSP (TypeScript, runs in the root partition) |
| \`guest/${c.name}-protocol.ts\`, \`guest/main.ts\` | the guest image with the VSC (AssemblyScript) |
| \`test/${c.name}.test.ts\` | boots the guest against the VSP and checks both sides |`
      : `| \`guest/main.ts\` | the guest image (AssemblyScript) with the integration services |
| \`test/guest.test.ts\` | boots it with the host's integration services and checks heartbeat, KVP and shutdown |`;
  return `# ${basename(c.sdkFromRoot) === '.' ? 'tsvisor project' : 'tsvisor child-SDK project'}

Made by \`tsvisor sdk new\` (template \`${template}\`). The tsvisor repository is at \`${c.sdkFromRoot}\`;
sources import the SDK from there by relative path, and the scripts run its tsx and vitest.

    npm run build       # guest/main.ts → build/guest.wasm
    npm test            # builds if needed, boots the guest in a child partition, runs the checks
    npm run typecheck   # the host side (VSP, tests) with TypeScript

| path | what |
|---|---|
${layout}

The SDK guide: \`${c.sdkFromRoot}/docs/child-sdk.md\`. Interface GUID of this device: \`${c.guid}\`.
`;
}

/** Writes the project; returns the files written, relative to `dir`. */
export function scaffoldProject(dirArg: string, o: ScaffoldOptions = {}): string[] {
  const dir = resolve(dirArg);
  const template = o.template ?? 'device';
  if (template !== 'device' && template !== 'guest') throw new Error(`unknown template ${JSON.stringify(template)} (device, guest)`);
  if (existsSync(dir) && readdirSync(dir).length > 0 && !o.force) throw new Error(`${dir} is not empty (use --force to write into it)`);
  const c = context(dir, o.device ?? deviceNameOf(dir));
  const files: Record<string, string> = {
    'package.json': packageJson(c, dir),
    'build.ts': buildScript(c),
    'vitest.config.mjs': vitestConfig(),
    'guest/tsconfig.json': guestTsconfig(c),
    'tsconfig.json': hostTsconfig(c),
    'types.d.ts': typeReferences(c),
    '.gitignore': 'build/\nnode_modules/\n',
    'README.md': readme(c, template),
  };
  if (template === 'device') {
    Object.assign(files, {
      [`host/${c.name}-protocol.ts`]: deviceHostProtocol(c),
      [`host/${c.name}-vsp.ts`]: deviceVsp(c),
      [`guest/${c.name}-protocol.ts`]: deviceGuestProtocol(c),
      'guest/main.ts': deviceGuestMain(c),
      [`test/${c.name}.test.ts`]: deviceTest(c),
    });
  } else {
    Object.assign(files, { 'guest/main.ts': guestOnlyMain(c), 'test/guest.test.ts': guestOnlyTest(c) });
  }
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return Object.keys(files);
}
