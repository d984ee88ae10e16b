import { pack, unpack } from 'msgpackr';
import { HvError } from '../../hypervisor/hv-error.ts';

/**
 * An emulated device's saved state as the VMWP's saved-state file carries it (DeviceRecord:
 * name, version, bytes in the device's own encoding). The encoding here is a MessagePack map
 * with named fields: a newer version may add fields, and a reader ignores what it does not know.
 */
export interface DeviceStateRecord {
  name: string;
  version: number;
  state: Uint8Array;
}

export interface SavableDevice {
  saveState(): DeviceStateRecord;
  /** Throws HvError HV_ERR_DEVICE_STATE (and leaves the device unchanged) on a record it cannot use. */
  restoreState(record: DeviceStateRecord): void;
}

export function encodeState(fields: Record<string, unknown>): Uint8Array {
  return pack(fields);
}

export function stateError(what: string): HvError {
  return new HvError('HV_ERR_DEVICE_STATE', `device saved state: ${what}`);
}

/**
 * Decodes and checks a record before any field reaches a device: the name and version must match,
 * and every field read through the returned reader is type- and range-checked.
 */
export function openState(record: DeviceStateRecord, name: string, version: number): StateReader {
  if (record.name !== name) throw stateError(`record for ${record.name}, expected ${name}`);
  if (record.version !== version) throw stateError(`${name} version ${record.version} is not supported (this build reads ${version})`);
  let fields: unknown;
  try {
    fields = unpack(record.state);
  } catch (err) {
    throw stateError(`${name}: undecodable (${(err as Error).message})`);
  }
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw stateError(`${name}: not a map`);
  return new StateReader(name, fields as Record<string, unknown>);
}

export class StateReader {
  constructor(
    private readonly device: string,
    private readonly fields: Record<string, unknown>,
  ) {}

  int(key: string, min: number, max: number): number {
    const v = this.fields[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw stateError(`${this.device}.${key} = ${String(v)} is not an integer in [${min}, ${max}]`);
    return v;
  }

  str<T extends string>(key: string, allowed: readonly T[]): T {
    const v = this.fields[key];
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw stateError(`${this.device}.${key} is not one of ${allowed.join(', ')}`);
    return v as T;
  }

  bool(key: string): boolean {
    const v = this.fields[key];
    if (typeof v !== 'boolean') throw stateError(`${this.device}.${key} is not a boolean`);
    return v;
  }

  bytes(key: string, minLength: number, maxLength: number): Uint8Array {
    const v = this.fields[key];
    if (!(v instanceof Uint8Array) || v.length < minLength || v.length > maxLength)
      throw stateError(`${this.device}.${key} is not ${minLength}–${maxLength} bytes`);
    return new Uint8Array(v);
  }

  /** The field is present (a field added in a later version may be missing from an older record). */
  has(key: string): boolean {
    return this.fields[key] !== undefined;
  }

  /** A nested map (or undefined when absent/null). */
  optional(key: string): StateReader | undefined {
    const v = this.fields[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw stateError(`${this.device}.${key} is not a map`);
    return new StateReader(`${this.device}.${key}`, v as Record<string, unknown>);
  }

  child(key: string): StateReader {
    const r = this.optional(key);
    if (!r) throw stateError(`${this.device}.${key} is missing`);
    return r;
  }
}

/** A saved configuration space must belong to the same function: vendor, device, revision and class (bytes 00h–0Bh). */
export function checkPciIdentity(what: string, current: Uint8Array, saved: Uint8Array): void {
  for (let i = 0; i < 0x0c; i++) {
    if (i === 4 || i === 5 || i === 6 || i === 7) continue; // command and status are state
    if (current[i] !== saved[i]) throw stateError(`${what}: saved configuration space belongs to another PCI function`);
  }
}
