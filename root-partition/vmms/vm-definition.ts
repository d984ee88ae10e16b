/**
 * A VM definition: what VMMS persists for each VM (`vms/<id>.json`) and validates whenever it
 * comes from outside — a file on disk (possibly hand-edited or half-written by another tool) or
 * a client request. The schema is data (valibot); `validateDefinition` reports every problem at
 * once, each with the field it concerns (schema-problems.ts).
 */
import { randomUUID } from 'node:crypto';
import * as v from 'valibot';
import { MAX_VPS } from '../../hypervisor/partition-control.ts';
import { linuxDefinitionProblems } from '../x86/linux-vm-rules.ts';
import { DEVICES_SCHEMA } from './vm-device-settings.ts';
import { absolutePath, documentObject, guid, intIn, schemaProblems, text } from './schema-problems.ts';

export const DEFINITION_VERSION = 1;
export const MAX_VM_MEMORY_BYTES = 4 * 1024 ** 3;
const WASM_PAGE = 65536;

export type AutomaticStopAction = 'save' | 'turn-off';
/** Set-VM -AutomaticStartAction: what the service does with the VM when it starts. */
export type AutomaticStartAction = 'nothing' | 'start' | 'start-if-running';
export const AUTOMATIC_START_ACTIONS: readonly AutomaticStartAction[] = ['nothing', 'start', 'start-if-running'];
export const MAX_NOTES_LENGTH = 4096;
/** What runs in the VM: absent, a WebAssembly guest image; 'linux', the built-in Linux guest on the x86 VP kind (docs/linux-guest.md). */
export type GuestKind = 'linux';

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
  /** 'linux': the built-in Linux guest, imagePath its manifest (build/linux-guest/manifest.json); absent: imagePath is a WebAssembly image. */
  guest?: GuestKind;
}

export { GUID } from './schema-problems.ts';

/** A percentage to a thousandth of a percent (Msvm_ProcessorSettingData's unit). */
function percent(minOpen: boolean) {
  const range = `must be a percentage ${minOpen ? 'above' : 'from'} 0 to 100`;
  return v.pipe(
    v.number(range),
    v.finite(range),
    minOpen ? v.gtValue(0, range) : v.minValue(0, range),
    v.maxValue(100, range),
    v.check((n) => Math.abs(n * 1000 - Math.round(n * 1000)) <= 1e-6, 'must be a multiple of 0.001 (thousandths of a percent)'),
  );
}

/**
 * The schema: every field and its rule, in the order problems are reported. Unknown fields are
 * refused (a typo must not pass silently); the fields added after version 1 was fixed may be left out.
 */
export const DEFINITION_SCHEMA = v.pipe(
  documentObject(
    {
      version: v.literal(DEFINITION_VERSION, `must be ${DEFINITION_VERSION} (this tsvisor reads definition version ${DEFINITION_VERSION})`),
      id: guid(),
      name: text(100, /^[^\u0000-\u001f/\\]+$/, 'a non-empty name without control characters or slashes'),
      memoryBytes: v.pipe(intIn(WASM_PAGE, MAX_VM_MEMORY_BYTES), v.multipleOf(WASM_PAGE, 'must be a multiple of 64 KiB')),
      vpCount: intIn(1, MAX_VPS),
      imagePath: absolutePath(),
      cmdline: text(3840),
      automaticStopAction: v.picklist(['save', 'turn-off'], "must be 'save' or 'turn-off'"),
      devices: DEVICES_SCHEMA,
      automaticStartAction: v.optional(v.picklist(AUTOMATIC_START_ACTIONS, `must be ${AUTOMATIC_START_ACTIONS.map((a) => `'${a}'`).join(', ')}`)),
      notes: v.optional(text(MAX_NOTES_LENGTH)),
      cpuReserve: v.optional(percent(false)),
      cpuMaximum: v.optional(percent(true)),
      cpuWeight: v.optional(intIn(1, 10_000)),
      guest: v.optional(v.literal('linux', "must be 'linux' (the built-in Linux guest) or absent (a WebAssembly guest image)")),
    },
    'the definition must be a JSON object',
  ),
  // What the Linux guest cannot have, each with why (linux-vm-rules.ts).
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed || dataset.value.guest !== 'linux') return;
    for (const message of linuxDefinitionProblems(dataset.value)) addIssue({ message });
  }),
  v.forward(
    v.partialCheck(
      [['cpuReserve'], ['cpuMaximum']],
      (d) => (d.cpuReserve ?? 0) <= (d.cpuMaximum ?? 100),
      (issue) => {
        const d = issue.input as { cpuReserve: number; cpuMaximum?: number };
        return `${d.cpuReserve}% is above the maximum of ${d.cpuMaximum ?? 100}%`;
      },
    ),
    ['cpuReserve'],
  ),
);

export class DefinitionError extends Error {
  readonly code = 'VMMS_ERR_DEFINITION';
  constructor(
    message: string,
    readonly problems: string[],
  ) {
    super(message);
  }
}

/** Returns the problems (empty when valid). */
export function definitionProblems(value: unknown): string[] {
  return schemaProblems(DEFINITION_SCHEMA, value);
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
  guest?: GuestKind;
}

/** A new definition from a client's request (validated like a file). */
export function newDefinition(r: NewVmRequest): VmDefinition {
  return validateDefinition(
    {
      version: DEFINITION_VERSION,
      id: randomUUID(),
      name: r.name,
      memoryBytes: r.memoryBytes,
      vpCount: r.vpCount ?? 1,
      imagePath: r.imagePath,
      cmdline: r.cmdline ?? '',
      // The Linux guest cannot be saved (linux-vm-rules.ts): it is turned off when the service stops.
      automaticStopAction: r.automaticStopAction ?? (r.guest === 'linux' ? 'turn-off' : 'save'),
      devices: r.devices ?? [],
      ...(r.automaticStartAction !== undefined ? { automaticStartAction: r.automaticStartAction } : {}),
      ...(r.notes !== undefined ? { notes: r.notes } : {}),
      ...(r.cpuReserve !== undefined ? { cpuReserve: r.cpuReserve } : {}),
      ...(r.cpuMaximum !== undefined ? { cpuMaximum: r.cpuMaximum } : {}),
      ...(r.cpuWeight !== undefined ? { cpuWeight: r.cpuWeight } : {}),
      ...(r.guest !== undefined ? { guest: r.guest } : {}),
    },
    'new VM',
  );
}
