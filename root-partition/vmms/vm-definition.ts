/**
 * A VM definition: what VMMS persists for each VM (`vms/<id>.json`) and validates whenever it
 * comes from outside — a file on disk (possibly hand-edited or half-written by another tool) or
 * a client request. The schema is data; `validateDefinition` reports every problem at once,
 * each with the field it concerns.
 */
import { randomUUID } from 'node:crypto';
import { MAX_VPS } from '../../hypervisor/partition-control.ts';
import { deviceProblems } from './vm-device-settings.ts';

export const DEFINITION_VERSION = 1;
export const MAX_VM_MEMORY_BYTES = 4 * 1024 ** 3;
const WASM_PAGE = 65536;

export type AutomaticStopAction = 'save' | 'turn-off';
/** Set-VM -AutomaticStartAction: what the service does with the VM when it starts. */
export type AutomaticStartAction = 'nothing' | 'start' | 'start-if-running';
export const AUTOMATIC_START_ACTIONS: readonly AutomaticStartAction[] = ['nothing', 'start', 'start-if-running'];
export const MAX_NOTES_LENGTH = 4096;

/** A device entry: one of the kinds in vm-device-settings.ts (IDE disk, SCSI controller, integration services). */
export interface DeviceDefinition {
  kind: string;
  [setting: string]: unknown;
}

export interface VmDefinition {
  version: number;
  /** A GUID: Msvm_ComputerSystem.Name. */
  id: string;
  name: string;
  memoryBytes: number;
  vpCount: number;
  imagePath: string;
  cmdline: string;
  automaticStopAction: AutomaticStopAction;
  devices: DeviceDefinition[];
  /** Absent: 'nothing' (definitions written before the setting existed). */
  automaticStartAction?: AutomaticStartAction;
  /** Set-VM -Notes: free text for the operator. */
  notes?: string;
  /** Set-VMProcessor -Reserve: percent of the VM's processors guaranteed (0..100; absent 0). docs/scheduling.md */
  cpuReserve?: number;
  /** Set-VMProcessor -Maximum: percent of the VM's processors it may use at most (above 0..100; absent 100). */
  cpuMaximum?: number;
  /** Set-VMProcessor -RelativeWeight: 1..10000 (absent 100). */
  cpuWeight?: number;
}

/** Fields a definition may leave out (added after version 1 was fixed). */
const OPTIONAL_FIELDS: ReadonlySet<string> = new Set(['automaticStartAction', 'notes', 'cpuReserve', 'cpuMaximum', 'cpuWeight']);

export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Check = (v: unknown) => string | null;
const isString = (max: number, pattern?: RegExp, what = 'a string'): Check => (v) =>
  typeof v !== 'string' ? `must be ${what}` : v.length > max ? `must be at most ${max} characters` : pattern && !pattern.test(v) ? `must be ${what}` : null;
/** A percentage to a thousandth of a percent (Msvm_ProcessorSettingData's unit). */
const isPercent = (min: number, minOpen: boolean): Check => (v) =>
  typeof v !== 'number' || !Number.isFinite(v) || (minOpen ? v <= min : v < min) || v > 100 ? `must be a percentage ${minOpen ? 'above' : 'from'} ${min} to 100` : Math.abs(v * 1000 - Math.round(v * 1000)) > 1e-6 ? 'must be a multiple of 0.001 (thousandths of a percent)' : null;
const isInt = (min: number, max: number, extra?: (n: number) => string | null): Check => (v) =>
  typeof v !== 'number' || !Number.isInteger(v) ? 'must be an integer' : v < min || v > max ? `must be between ${min} and ${max}` : extra ? extra(v) : null;

/** The schema: every field, its check. Unknown fields are refused (a typo must not pass silently). */
export const DEFINITION_SCHEMA: Record<keyof Required<VmDefinition>, Check> = {
  version: (v) => (v === DEFINITION_VERSION ? null : `must be ${DEFINITION_VERSION} (this tsvisor reads definition version ${DEFINITION_VERSION})`),
  id: isString(36, GUID, 'a lower-case GUID'),
  name: isString(100, /^[^\u0000-\u001f/\\]+$/, 'a non-empty name without control characters or slashes'),
  memoryBytes: isInt(WASM_PAGE, MAX_VM_MEMORY_BYTES, (n) => (n % WASM_PAGE === 0 ? null : 'must be a multiple of 64 KiB')),
  vpCount: isInt(1, MAX_VPS),
  imagePath: isString(4096, /^\/.+/, 'an absolute path'),
  cmdline: isString(3840),
  automaticStopAction: (v) => (v === 'save' || v === 'turn-off' ? null : "must be 'save' or 'turn-off'"),
  devices: (v) => {
    if (!Array.isArray(v)) return 'must be an array';
    const problems = deviceProblems(v);
    return problems.length ? problems.join('; ') : null;
  },
  automaticStartAction: (v) => (AUTOMATIC_START_ACTIONS.includes(v as AutomaticStartAction) ? null : `must be ${AUTOMATIC_START_ACTIONS.map((a) => `'${a}'`).join(', ')}`),
  notes: isString(MAX_NOTES_LENGTH),
  cpuReserve: isPercent(0, false),
  cpuMaximum: isPercent(0, true),
  cpuWeight: (v) => isInt(1, 10_000)(v),
};

export class DefinitionError extends Error {
  readonly code = 'VMMS_ERR_DEFINITION';
  constructor(message: string, readonly problems: string[]) {
    super(message);
  }
}

/** Returns the problems (empty when valid). */
export function definitionProblems(value: unknown): string[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return ['the definition must be a JSON object'];
  const o = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const [field, check] of Object.entries(DEFINITION_SCHEMA)) {
    if (!(field in o)) { if (!OPTIONAL_FIELDS.has(field)) problems.push(`${field}: missing`); continue; }
    const p = check(o[field]);
    if (p) problems.push(`${field}: ${p}`);
  }
  for (const field of Object.keys(o)) if (!(field in DEFINITION_SCHEMA)) problems.push(`${field}: unknown field`);
  if (typeof o.cpuReserve === 'number' && o.cpuReserve > (typeof o.cpuMaximum === 'number' ? o.cpuMaximum : 100)) problems.push(`cpuReserve: ${o.cpuReserve}% is above the maximum of ${typeof o.cpuMaximum === 'number' ? o.cpuMaximum : 100}%`);
  return problems;
}

export function validateDefinition(value: unknown, where: string): VmDefinition {
  const problems = definitionProblems(value);
  if (problems.length) throw new DefinitionError(`${where}: invalid VM definition: ${problems.join('; ')}`, problems);
  return value as VmDefinition;
}

export interface NewVmRequest {
  name: string;
  memoryBytes: number;
  vpCount?: number;
  imagePath: string;
  cmdline?: string;
  automaticStopAction?: AutomaticStopAction;
  devices?: DeviceDefinition[];
  automaticStartAction?: AutomaticStartAction;
  notes?: string;
  cpuReserve?: number;
  cpuMaximum?: number;
  cpuWeight?: number;
}

/** A new definition from a client's request (validated like a file). */
export function newDefinition(r: NewVmRequest): VmDefinition {
  return validateDefinition({
    version: DEFINITION_VERSION,
    id: randomUUID(),
    name: r.name,
    memoryBytes: r.memoryBytes,
    vpCount: r.vpCount ?? 1,
    imagePath: r.imagePath,
    cmdline: r.cmdline ?? '',
    automaticStopAction: r.automaticStopAction ?? 'save',
    devices: r.devices ?? [],
    ...(r.automaticStartAction !== undefined ? { automaticStartAction: r.automaticStartAction } : {}),
    ...(r.notes !== undefined ? { notes: r.notes } : {}),
    ...(r.cpuReserve !== undefined ? { cpuReserve: r.cpuReserve } : {}),
    ...(r.cpuMaximum !== undefined ? { cpuMaximum: r.cpuMaximum } : {}),
    ...(r.cpuWeight !== undefined ? { cpuWeight: r.cpuWeight } : {}),
  }, 'new VM');
}
