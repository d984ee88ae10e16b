/**
 * A virtual switch definition, as VMMS persists it (`switches/<id>.json`) and as New-VMSwitch
 * creates it: a name unique on the host and a type. Private: VMs only. Internal: VMs and host
 * processes, which join it as ports on its socket, and optionally the host's network stack
 * through passt (`passt`: the address it hands the guest, its gateway, port forwards), limited to
 * the host itself. External: VMs and the host's networks, always through passt as the uplink,
 * which reaches whatever the host's sockets reach.
 */
import { randomUUID } from 'node:crypto';
import * as v from 'valibot';
import { parsePortForward } from '../vswitch/passt-forward.ts';
import { acrossEntries, documentObject, exactObject, guid, schemaProblems } from './schema-problems.ts';

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

const guestAddressRule = 'must be a.b.c.d/prefix (prefix 8..30)';
const hostPart = (cidr: string) => cidr.split('/')[0];

const PASST_SCHEMA = v.pipe(
  exactObject({
    guestAddress: v.pipe(
      v.string(guestAddressRule),
      v.check((a) => {
        const [addr, prefix, more] = a.split('/');
        return more === undefined && IPV4.test(addr) && /^\d{1,2}$/.test(prefix ?? '') && Number(prefix) >= 8 && Number(prefix) <= 30;
      }, guestAddressRule),
    ),
    gateway: v.pipe(v.string('must be a.b.c.d'), v.regex(IPV4, 'must be a.b.c.d')),
    forwards: v.pipe(
      v.array(v.string('must be udp|tcp:HOSTPORT:GUESTPORT'), `must be a list of at most ${MAX_FORWARDS}`),
      v.maxLength(MAX_FORWARDS, `must be a list of at most ${MAX_FORWARDS}`),
      // Each forward as passt-forward.ts reads it, and a host port forwarded once.
      acrossEntries((forwards, addIssue) => {
        const seen = new Set<string>();
        for (const f of forwards) {
          if (typeof f !== 'string') continue;
          const r = parsePortForward(f);
          if (typeof r === 'string') addIssue({ message: r });
          else if (seen.has(`${r.protocol}:${r.hostPort}`)) addIssue({ message: `host port ${r.protocol}:${r.hostPort} is forwarded twice` });
          else seen.add(`${r.protocol}:${r.hostPort}`);
        }
      }),
    ),
  }),
  v.forward(
    v.partialCheck([['guestAddress'], ['gateway']], (p) => p.gateway !== hostPart(p.guestAddress), 'must differ from the guest address'),
    ['gateway'],
  ),
);

const NAME = /^[^\u0000-\u001f/\\]{1,100}$/;

/** The schema of `switches/<id>.json` (valibot): every field and its rule. */
export const SWITCH_DEFINITION_SCHEMA = v.pipe(
  documentObject(
    {
      version: v.literal(SWITCH_DEFINITION_VERSION, `must be ${SWITCH_DEFINITION_VERSION}`),
      id: guid(),
      name: v.pipe(
        v.string('must be 1 to 100 characters without control characters or slashes'),
        v.regex(NAME, 'must be 1 to 100 characters without control characters or slashes'),
      ),
      type: v.picklist(SWITCH_TYPES, `must be ${SWITCH_TYPES.map((t) => `'${t}'`).join(' or ')}`),
      notes: v.optional(v.pipe(v.string('must be a string of at most 4096 characters'), v.maxLength(4096, 'must be a string of at most 4096 characters'))),
      passt: v.optional(PASST_SCHEMA),
    },
    'the switch definition must be a JSON object',
  ),
  v.forward(
    v.partialCheck([['type'], ['passt']], (d) => d.passt === undefined || d.type !== 'private', 'a private switch has no host side'),
    ['passt'],
  ),
);

export function switchDefinitionProblems(value: unknown): string[] {
  return schemaProblems(SWITCH_DEFINITION_SCHEMA, value);
}

export function newSwitchDefinition(r: { name: string; type?: string; notes?: string; passt?: Partial<PasstSettings> }): SwitchDefinition {
  // An external switch always has its uplink.
  const passt = r.passt || r.type === 'external' ? { ...PASST_DEFAULTS, ...r.passt } : undefined;
  const def = {
    version: SWITCH_DEFINITION_VERSION,
    id: randomUUID(),
    name: r.name,
    type: r.type ?? 'private',
    ...(r.notes !== undefined ? { notes: r.notes } : {}),
    ...(passt ? { passt } : {}),
  };
  const problems = switchDefinitionProblems(def);
  if (problems.length) throw new RangeError(`invalid switch: ${problems.join('; ')}`);
  return def as SwitchDefinition;
}
