/**
 * A virtual switch definition, as VMMS persists it (`switches/<id>.json`) and as New-VMSwitch
 * creates it: a name unique on the host and a type. Private: VMs only. Internal: VMs and host
 * processes, which join it as ports on its socket. (External — the host's network through a
 * user-mode stack — is not built.)
 */
import { randomUUID } from 'node:crypto';
import { GUID } from './vm-definition.ts';

export const SWITCH_DEFINITION_VERSION = 1;
export const SWITCH_TYPES = ['private', 'internal'] as const;
export type SwitchType = (typeof SWITCH_TYPES)[number];
/** Switches one host keeps (each is a listening socket and a MAC table in VMMS). */
export const MAX_SWITCHES = 64;

export interface SwitchDefinition {
  version: number;
  /** A GUID: Msvm_VirtualEthernetSwitch.Name. */
  id: string;
  /** ElementName: what New-VMSwitch -Name sets and NICs refer to. */
  name: string;
  type: SwitchType;
  notes?: string;
}

const NAME = /^[^\u0000-\u001f/\\]{1,100}$/;

export function switchDefinitionProblems(value: unknown): string[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return ['the switch definition must be a JSON object'];
  const o = value as Record<string, unknown>;
  const p: string[] = [];
  if (o.version !== SWITCH_DEFINITION_VERSION) p.push(`version: must be ${SWITCH_DEFINITION_VERSION}`);
  if (typeof o.id !== 'string' || !GUID.test(o.id)) p.push('id: must be a lower-case GUID');
  if (typeof o.name !== 'string' || !NAME.test(o.name)) p.push('name: must be 1 to 100 characters without control characters or slashes');
  if (!SWITCH_TYPES.includes(o.type as SwitchType)) p.push(`type: must be ${SWITCH_TYPES.map((t) => `'${t}'`).join(' or ')}${o.type === 'external' ? ' (external switches are not built)' : ''}`);
  if (o.notes !== undefined && (typeof o.notes !== 'string' || o.notes.length > 4096)) p.push('notes: must be a string of at most 4096 characters');
  for (const k of Object.keys(o)) if (!['version', 'id', 'name', 'type', 'notes'].includes(k)) p.push(`${k}: unknown field`);
  return p;
}

export function newSwitchDefinition(r: { name: string; type?: string; notes?: string }): SwitchDefinition {
  const def = { version: SWITCH_DEFINITION_VERSION, id: randomUUID(), name: r.name, type: r.type ?? 'private', ...(r.notes !== undefined ? { notes: r.notes } : {}) };
  const problems = switchDefinitionProblems(def);
  if (problems.length) throw new RangeError(`invalid switch: ${problems.join('; ')}`);
  return def as SwitchDefinition;
}
