/**
 * Builds the Linux guest for the x86 VP kind from Debian packages, into build/linux-guest/:
 * SeaBIOS (`seabios`), the unmodified i686 kernel and its modules (`linux-image-686:i386`) and a
 * busybox initramfs (`busybox-static:i386`) with a small /init, and Debian's KVP daemon
 * (`hyperv-daemons:i386` with `libc6:i386`, `base-files:i386`; optional). Nothing binary is committed: the
 * packages come from the machine's apt sources (.ci/run adds the i386 architecture) and are
 * cached in build/linux-guest/debs.
 * It also prepares v86.wasm for the x86 VP kind (hypervisor/x86/prepared-v86.ts) so the first
 * start does not pay the rewrite.
 * Usage: tsx scripts/build-linux-guest.ts [--force] [--optional]   (exit 0 and a manifest on
 * success; when the packages cannot be fetched, the reason in build/linux-guest/unavailable.txt
 * and exit 2, or 0 with --optional, as `npm run build` uses it)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cpioNewc, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, type CpioEntry } from './linux-guest/cpio-newc.ts';
import { moduleLoadOrder } from './linux-guest/module-deps.ts';
import { INIT_SCRIPT, BUSYBOX_LINKS } from './linux-guest/init-script.ts';
import { KVP_PACKAGES, kvpDaemonEntries } from './linux-guest/kvp-daemon.ts';
import { preparedV86 } from '../hypervisor/x86/prepared-v86.ts';
import { LINUX_GUEST_DIR, LINUX_GUEST_MODULES, type LinuxGuestManifest } from '../root-partition/x86/linux-guest-files.ts';

const debs = join(LINUX_GUEST_DIR, 'debs');
const root = join(LINUX_GUEST_DIR, 'root');

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The versioned kernel package the `linux-image-686` metapackage points at today. */
function kernelPackage(): string {
  const deps = sh('apt-cache', ['depends', 'linux-image-686:i386']);
  const m = /Depends: (linux-image-6\.[0-9.]+-\d+-686)(:i386)?\n/.exec(deps);
  if (!m) throw new Error(`linux-image-686:i386 has no kernel dependency (is the i386 architecture added?):\n${deps}`);
  return `${m[1]}:i386`;
}

function fetchPackages(): void {
  mkdirSync(debs, { recursive: true });
  const have = readdirSync(debs);
  const want = [
    { pkg: 'seabios', prefix: 'seabios_' },
    { pkg: 'busybox-static:i386', prefix: 'busybox-static_' },
    { pkg: kernelPackage(), prefix: 'linux-image-' },
  ].filter((w) => !have.some((f) => f.startsWith(w.prefix)));
  if (want.length > 0) sh('apt-get', ['download', '-q', ...want.map((w) => w.pkg)], debs);
}

/**
 * The KVP daemon (hv_kvp_daemon) and what it needs: Debian's i386 glibc and /etc/os-release.
 * Optional: without them the guest boots as before, without KVP; the reason is returned.
 */
function fetchKvpPackages(): string | undefined {
  const have = readdirSync(debs);
  const want = KVP_PACKAGES.filter((w) => !have.some((f) => f.startsWith(w.prefix)));
  try {
    if (want.length > 0) sh('apt-get', ['download', '-q', ...want.map((w) => w.pkg)], debs);
    return undefined;
  } catch (e) {
    return `the KVP daemon's packages (${want.map((w) => w.pkg).join(', ')}) could not be fetched: ${(e as Error).message.trim()}`;
  }
}

function extract(): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  for (const f of readdirSync(debs).filter((n) => n.endsWith('.deb'))) sh('dpkg-deb', ['-x', join(debs, f), root]);
}

function buildInitramfs(kernelVersion: string): { bytes: Uint8Array; modules: string[]; kvpUnavailable?: string } {
  const modRoot = join(root, 'lib', 'modules', kernelVersion);
  const order = moduleLoadOrder(modRoot, LINUX_GUEST_MODULES);
  const enc = new TextEncoder();
  const dirs = ['bin', 'sbin', 'dev', 'proc', 'sys', 'tmp', 'root', 'lib', 'lib/modules'];
  const entries: CpioEntry[] = dirs.map((name) => ({ name, mode: S_IFDIR | 0o755 }));
  // The kernel opens /dev/console before /init runs; devtmpfs provides the rest.
  entries.push({ name: 'dev/console', mode: S_IFCHR | 0o600, rdev: { major: 5, minor: 1 } });
  entries.push({ name: 'bin/busybox', mode: S_IFREG | 0o755, data: readFileSync(join(root, 'bin', 'busybox')) });
  for (const l of BUSYBOX_LINKS) entries.push({ name: `bin/${l}`, mode: S_IFLNK | 0o777, data: enc.encode('busybox') });
  for (const m of order) {
    entries.push({ name: `lib/modules/${m.name}.ko`, mode: S_IFREG | 0o644, data: readFileSync(m.path) });
  }
  entries.push({ name: 'lib/modules/load-order', mode: S_IFREG | 0o644, data: enc.encode(order.map((m) => m.name).join('\n') + '\n') });
  const kvp = kvpDaemonEntries(root);
  if (!('unavailable' in kvp)) entries.push(...kvp.entries);
  entries.push({ name: 'init', mode: S_IFREG | 0o755, data: enc.encode(INIT_SCRIPT) });
  return {
    bytes: gzipSync(cpioNewc(entries), { level: 6 }),
    modules: order.map((m) => m.name),
    ...('unavailable' in kvp ? { kvpUnavailable: kvp.unavailable } : {}),
  };
}

/** The manifest is newer than every package and every input of the initramfs. */
function upToDate(): boolean {
  const manifest = join(LINUX_GUEST_DIR, 'manifest.json');
  if (!existsSync(manifest)) return false;
  const built = statSync(manifest).mtimeMs;
  const inputs = [
    ...readdirSync(debs).map((f) => join(debs, f)),
    ...readdirSync(join(import.meta.dirname, 'linux-guest')).map((f) => join(import.meta.dirname, 'linux-guest', f)),
    import.meta.filename,
  ];
  return inputs.every((f) => statSync(f).mtimeMs < built);
}

async function main(): Promise<void> {
  mkdirSync(LINUX_GUEST_DIR, { recursive: true });
  const unavailable = join(LINUX_GUEST_DIR, 'unavailable.txt');
  try {
    fetchPackages();
  } catch (e) {
    writeFileSync(unavailable, `the Debian packages could not be fetched: ${(e as Error).message}\n`);
    console.error(`linux guest: ${readFileSync(unavailable, 'utf8').trim()}`);
    process.exit(process.argv.includes('--optional') ? 0 : 2);
  }
  rmSync(unavailable, { force: true });
  const kvpFetch = fetchKvpPackages();
  if (kvpFetch) console.error(`linux guest: ${kvpFetch}; the guest is built without KVP`);
  const v86 = await preparedV86();
  if (!process.argv.includes('--force') && upToDate()) {
    console.log(`linux guest: up to date${v86.cached ? '' : ' (v86.wasm prepared)'}`);
    return;
  }
  extract();
  const kernelVersion = readdirSync(join(root, 'lib', 'modules'))[0];
  const initramfs = buildInitramfs(kernelVersion);
  writeFileSync(join(LINUX_GUEST_DIR, 'initramfs.cpio.gz'), initramfs.bytes);
  const manifest: LinuxGuestManifest = {
    kernelVersion,
    bios: join(root, 'usr', 'share', 'seabios', 'bios-256k.bin'),
    vgaBios: join(root, 'usr', 'share', 'seabios', 'vgabios-stdvga.bin'),
    kernel: join(root, 'boot', `vmlinuz-${kernelVersion}`),
    initramfs: join(LINUX_GUEST_DIR, 'initramfs.cpio.gz'),
    modules: initramfs.modules,
    ...(kvpFetch || initramfs.kvpUnavailable ? { kvpUnavailable: kvpFetch ?? initramfs.kvpUnavailable } : {}),
  };
  for (const f of [manifest.bios, manifest.kernel]) if (!existsSync(f)) throw new Error(`missing after extraction: ${f}`);
  writeFileSync(join(LINUX_GUEST_DIR, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(
    `linux guest: kernel ${kernelVersion}, initramfs ${initramfs.bytes.length} bytes, modules ${initramfs.modules.join(' ')}, ${manifest.kvpUnavailable ? `no KVP daemon (${manifest.kvpUnavailable})` : 'hv_kvp_daemon'}`,
  );
}

await main();
