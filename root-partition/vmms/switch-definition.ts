/**
 * A virtual switch definition, as VMMS persists it (`switches/<id>.json`) and as New-VMSwitch
 * creates it: a name unique on the host and a type. Private: VMs only. Internal: VMs and host
 * processes, which join it as ports on its socket, and optionally the host's network stack
 * through passt (`passt`: the address it hands the guest, its gateway, port forwards), limited to
 * the host itself. External: VMs and the host's networks, always through passt as the uplink,
 * which reaches whatever the host's sockets reach.
 */
import { randomUUID } from 'node:crypto';
import { GUID } from './vm-definition.ts';
import { parsePortForward } from '../vswitch/passt-forward.ts';

export const SWITCH_DEFINITION_VERSION = 1;
export const SWITCH_TYPES = ['private', 'internal', 'external'] as const;
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
  /** Internal switches: passt on the switch as the host's side; external switches: the uplink (defaults when absent). */
  passt?: PasstSettings;
}

export interface PasstSettings {
  /** The address passt hands the guest by DHCP and forwards to, "a.b.c.d/prefix". */
  guestAddress: string;
  /** passt's own address on the switch (the guest's gateway). */
  gateway: string;
  /** "udp:HOSTPORT:GUESTPORT" or "tcp:HOSTPORT:GUESTPORT". */
  forwards: string[];
}

/** QEMU's user-mode network defaults: the guest at 10.0.2.15/24, the gateway at 10.0.2.2. */
export const PASST_DEFAULTS: PasstSettings = { guestAddress: '10.0.2.15/24', gateway: '10.0.2.2', forwards: [] };
const MAX_FORWARDS = 32;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function passtProblems(v: unknown): string[] {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return ['passt: must be an object'];
  const o = v as Record<string, unknown>;
  const p: string[] = [];
  const [addr, prefix] = typeof o.guestAddress === 'string' ? o.guestAddress.split('/') : [];
  if (!addr || !IPV4.test(addr) || !/^\d{1,2}$/.test(prefix ?? '') || Number(prefix) < 8 || Number(prefix) > 30) p.push('passt.guestAddress: must be a.b.c.d/prefix (prefix 8..30)');
  if (typeof o.gateway !== 'string' || !IPV4.test(o.gateway)) p.push('passt.gateway: must be a.b.c.d');
  else if (o.gateway === addr) p.push('passt.gateway: must differ from the guest address');
  if (!Array.isArray(o.forwards) || o.forwards.length > MAX_FORWARDS) p.push(`passt.forwards: must be a list of at most ${MAX_FORWARDS}`);
  else {
    const seen = new Set<string>();
    for (const f of o.forwards) {
      const r = typeof f === 'string' ? parsePortForward(f) : 'not a string';
      if (typeof r === 'string') p.push(`passt.forwards: ${r}`);
      else if (seen.has(`${r.protocol}:${r.hostPort}`)) p.push(`passt.forwards: host port ${r.protocol}:${r.hostPort} is forwarded twice`);
      else seen.add(`${r.protocol}:${r.hostPort}`);
    }
  }
  for (const k of Object.keys(o)) if (!['guestAddress', 'gateway', 'forwards'].includes(k)) p.push(`passt.${k}: unknown field`);
  return p;
}

const NAME = /^[^\u0000-\u001f/\\]{1,100}$/;

export function switchDefinitionProblems(value: unknown): string[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return ['the switch definition must be a JSON object'];
  const o = value as Record<string, unknown>;
  const p: string[] = [];
  if (o.version !== SWITCH_DEFINITION_VERSION) p.push(`version: must be ${SWITCH_DEFINITION_VERSION}`);
  if (typeof o.id !== 'string' || !GUID.test(o.id)) p.push('id: must be a lower-case GUID');
  if (typeof o.name !== 'string' || !NAME.test(o.name)) p.push('name: must be 1 to 100 characters without control characters or slashes');
  if (!SWITCH_TYPES.includes(o.type as SwitchType)) p.push(`type: must be ${SWITCH_TYPES.map((t) => `'${t}'`).join(' or ')}`);
  if (o.notes !== undefined && (typeof o.notes !== 'string' || o.notes.length > 4096)) p.push('notes: must be a string of at most 4096 characters');
  if (o.passt !== undefined) {
    if (o.type === 'private') p.push('passt: a private switch has no host side');
    p.push(...passtProblems(o.passt));
  }
  for (const k of Object.keys(o)) if (!['version', 'id', 'name', 'type', 'notes', 'passt'].includes(k)) p.push(`${k}: unknown field`);
  return p;
}

export function newSwitchDefinition(r: { name: string; type?: string; notes?: string; passt?: Partial<PasstSettings> }): SwitchDefinition {
  // An external switch always has its uplink.
  const passt = r.passt || r.type === 'external' ? { ...PASST_DEFAULTS, ...r.passt } : undefined;
  const def = { version: SWITCH_DEFINITION_VERSION, id: randomUUID(), name: r.name, type: r.type ?? 'private', ...(r.notes !== undefined ? { notes: r.notes } : {}), ...(passt ? { passt } : {}) };
  const problems = switchDefinitionProblems(def);
  if (problems.length) throw new RangeError(`invalid switch: ${problems.join('; ')}`);
  return def as SwitchDefinition;
}
