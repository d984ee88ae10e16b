/**
 * An operator's own VSPs, written with the child SDK, loaded into a VM's worker beside the
 * built-in ones. A VSP module is code the worker runs with the service's rights, so it is held
 * to more than a disk image: it must lie in a storage root (as the service resolves it), be a
 * regular file, and neither it nor its directory may be writable by anyone but its owner, who
 * must be root or the service's own user — the rules sudo applies to its own files. TypeScript
 * modules are compiled on load by tsx (a dependency of tsvisor).
 */
import { lstatSync, realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Vsp } from '../../vmbus/host/vsp.ts';
import type { UserVspConfig } from './device-config.ts';
import { StorageRoots } from '../host/storage-roots.ts';

export class UserVspError extends Error {}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const USER_VSP_EXTENSIONS = /\.(ts|mts|js|mjs)$/;

/** Why `path` may not be loaded as code, or null. */
export function moduleFileProblem(path: string): string | null {
  if (!USER_VSP_EXTENSIONS.test(path)) return `${path} is not a .ts, .mts, .js or .mjs module`;
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return `${path} cannot be used: no such file`;
  }
  const me = process.geteuid?.() ?? 0;
  const st = statSync(real);
  if (!st.isFile()) return `${path} is not a regular file`;
  for (const [what, s] of [
    ['the module', st],
    ['its directory', lstatSync(dirname(real))],
  ] as const) {
    if (s.uid !== 0 && s.uid !== me)
      return `${path}: ${what} belongs to uid ${s.uid}; a VSP module and its directory must belong to root or to the service's user (uid ${me})`;
    if ((s.mode & 0o022) !== 0)
      return `${path}: ${what} is writable by ${s.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(s.mode & 0o777).toString(8)}); a VSP module is code the worker runs, so only its owner may change it`;
  }
  return null;
}

let tsxRegistered = false;

async function importModule(path: string): Promise<Record<string, unknown>> {
  if (/\.m?ts$/.test(path) && !tsxRegistered) {
    const { register } = await import('tsx/esm/api');
    register();
    tsxRegistered = true;
  }
  return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
}

/** The class a spec names: its export, else the module's default export, else its only exported class. */
function vspClass(mod: Record<string, unknown>, spec: UserVspConfig): new () => Vsp {
  const classes = Object.entries(mod).filter(([, v]) => typeof v === 'function' && /^class\s/.test(Function.prototype.toString.call(v)));
  const pick = spec.export !== undefined ? mod[spec.export] : (mod.default ?? (classes.length === 1 ? classes[0]![1] : undefined));
  if (typeof pick !== 'function') {
    const names = classes.map(([n]) => n).join(', ') || 'none';
    throw new UserVspError(
      spec.export !== undefined
        ? `${spec.module} has no export "${spec.export}" that is a class (its classes: ${names})`
        : `${spec.module}: name the VSP class to use (its exported classes: ${names})`,
    );
  }
  return pick as new () => Vsp;
}

/** The instance is checked as the VMBus host will use it, so a mistake is named here, not later. */
function checkVsp(vsp: Vsp, where: string): void {
  const o = vsp.offer as { interfaceType?: unknown; interfaceInstance?: unknown } | undefined;
  if (!o || typeof o.interfaceType !== 'string' || !GUID.test(o.interfaceType) || typeof o.interfaceInstance !== 'string' || !GUID.test(o.interfaceInstance)) {
    throw new UserVspError(`${where}: offer must have interfaceType and interfaceInstance GUIDs`);
  }
  for (const k of ['maxReplyBytes', 'maxPacketBytes'] as const) {
    if (!Number.isInteger(vsp[k]) || vsp[k] <= 0 || vsp[k] > 1 << 20) throw new UserVspError(`${where}: ${k} must be a whole number of bytes from 1 to 1 MiB`);
  }
  if (typeof vsp.onOpen !== 'function' || typeof vsp.onPackets !== 'function') throw new UserVspError(`${where}: onOpen and onPackets must be methods`);
}

/** Loads and instantiates every user VSP of a VM, in order; the first that fails stops the start with its reason. */
export async function loadUserVsps(specs: readonly UserVspConfig[], storageRoots?: readonly string[]): Promise<Vsp[]> {
  const roots = storageRoots ? StorageRoots.of(storageRoots) : null;
  const out: Vsp[] = [];
  for (const spec of specs) {
    roots?.check(spec.module, 'VSP module');
    const problem = moduleFileProblem(spec.module);
    if (problem) throw new UserVspError(problem);
    const where = `VSP ${spec.module}${spec.export ? `#${spec.export}` : ''}`;
    let mod: Record<string, unknown>;
    try {
      mod = await importModule(realpathSync(spec.module));
    } catch (e) {
      throw new UserVspError(`${where} failed to load: ${(e as Error).message.split('\n')[0]}`);
    }
    const Class = vspClass(mod, spec);
    let vsp: Vsp;
    try {
      vsp = new Class();
    } catch (e) {
      throw new UserVspError(`${where}: its constructor failed: ${(e as Error).message}`);
    }
    checkVsp(vsp, where);
    if (out.some((v) => v.offer.interfaceInstance.toLowerCase() === vsp.offer.interfaceInstance.toLowerCase()))
      throw new UserVspError(`${where}: another VSP of this VM offers the same instance ${vsp.offer.interfaceInstance}`);
    out.push(vsp);
  }
  return out;
}
