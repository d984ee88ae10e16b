/**
 * Msvm_VirtualEthernetSwitch, its settings and Msvm_VirtualEthernetSwitchManagementService over the
 * VMMS's switches: New-VMSwitch is DefineSystem (SystemSettings: a
 * Msvm_VirtualEthernetSwitchSettingData whose ElementName is the name; an internal switch carries
 * an Msvm_EthernetPortAllocationSettingData whose HostResource names the host computer system, an
 * external one a port whose HostResource names an Msvm_ExternalEthernetPort: passt, the uplink),
 * Remove-VMSwitch is DestroySystem. Failures answer 4096 with a job in Exception saying why.
 */
import { CimInstance } from '../cim/instance.ts';
import { keyValue, type CimObjectPath } from '../cim/object-path.ts';
import type { CimMethodResult } from '../cim/provider.ts';
import type { CimSchema } from '../cim/schema.ts';
import type { CimValue } from '../cim/types.ts';
import type { JobTable } from './job-table.ts';
import type { SwitchRecord, SwitchService } from './vmms-port.ts';

const SWITCH_SERVICE_NAME = 'Microsoft:VirtualEthernetSwitchManagementService';

export function switchPathOf(id: string): CimObjectPath {
  return {
    className: 'Msvm_VirtualEthernetSwitch',
    keys: [
      { name: 'CreationClassName', value: 'Msvm_VirtualEthernetSwitch' },
      { name: 'Name', value: id },
    ],
  };
}

export function switchObjects(
  schema: CimSchema,
  hostName: string,
  switches: readonly SwitchRecord[],
): { switches: CimInstance[]; settings: CimInstance[]; service: CimInstance } {
  return {
    switches: switches.map((s) =>
      schema.createInstance('Msvm_VirtualEthernetSwitch', {
        CreationClassName: 'Msvm_VirtualEthernetSwitch',
        Name: s.id,
        ElementName: s.name,
        EnabledState: 2,
        HealthState: 5,
        OperationalStatus: [2],
        MaxVMQOffloads: 0,
        MaxChimneyOffloads: 0,
        SwitchType: s.type,
        LearnedAddresses: s.learnedAddresses,
        ConnectedPorts: s.connectedPorts,
      }),
    ),
    settings: switches.map((s) =>
      schema.createInstance('Msvm_VirtualEthernetSwitchSettingData', {
        InstanceID: `Microsoft:${s.id}`,
        ElementName: s.name,
        VirtualSystemIdentifier: s.id,
        Notes: s.notes ? [s.notes] : [],
        IOVPreferred: false,
        HostStack: s.passt ? 'passt' : '',
        ...(s.passt ? { HostStackGuestAddress: s.passt.guestAddress, HostStackGateway: s.passt.gateway, PortForwards: [...s.passt.forwards] } : {}),
      }),
    ),
    service: schema.createInstance('Msvm_VirtualEthernetSwitchManagementService', {
      CreationClassName: 'Msvm_VirtualEthernetSwitchManagementService',
      Name: SWITCH_SERVICE_NAME,
      SystemCreationClassName: 'Msvm_ComputerSystem',
      SystemName: hostName,
      ElementName: 'Virtual Ethernet Switch Management Service',
      EnabledState: 2,
      HealthState: 5,
      OperationalStatus: [2],
    }),
  };
}

type Params = Readonly<Record<string, CimValue>>;

function instances(v: CimValue | undefined): CimInstance[] {
  return (Array.isArray(v) ? v : v ? [v] : []).filter((x): x is CimInstance => x instanceof CimInstance);
}

export class SwitchMethods {
  constructor(
    private readonly service: SwitchService | undefined,
    private readonly jobs: JobTable,
  ) {}

  async invoke(method: string, p: Params): Promise<CimMethodResult> {
    if (!this.service) return this.failed(method, 32768, 'this host has no virtual switches');
    if (method.toLowerCase() === 'definesystem') return this.define(p);
    if (method.toLowerCase() === 'destroysystem') return this.destroy(p);
    return this.failed(method, 32768, `${method} is not offered for switches`);
  }

  private async define(p: Params): Promise<CimMethodResult> {
    const [settings] = instances(p.SystemSettings);
    const name = settings?.get('ElementName');
    if (typeof name !== 'string' || !name)
      return this.failed('Creating Switch', 32773, 'SystemSettings must hold a Msvm_VirtualEthernetSwitchSettingData with ElementName (the switch name)');
    const ports = instances(p.ResourceSettings);
    // A port on the host's external Ethernet port (HostResource = an Msvm_ExternalEthernetPort, as
    // New-VMSwitch -NetAdapterName gives; here its DeviceID is "passt", the only uplink) makes the
    // switch external; the host's own port (HostResource = the host computer system) internal.
    const resource = (r: CimInstance) => JSON.stringify(r.get('HostResource') ?? '');
    const externalPorts = ports.filter((r) => resource(r).includes('Msvm_ExternalEthernetPort'));
    const hostPorts = ports.filter((r) => !externalPorts.includes(r) && resource(r).includes('Msvm_ComputerSystem'));
    if (externalPorts.length > 1 || hostPorts.length > 1 || ports.length > externalPorts.length + hostPorts.length) {
      return this.failed(
        'Creating Switch',
        32773,
        'ResourceSettings may hold one external port (HostResource = Msvm_ExternalEthernetPort) and one internal port (HostResource = the host), nothing else',
      );
    }
    const type = externalPorts.length ? 'external' : hostPorts.length ? 'internal' : 'private';
    const notes = settings!.get('Notes');
    const str = (k: string) => {
      const v = settings!.get(k);
      return typeof v === 'string' && v ? v : undefined;
    };
    const forwards = settings!.get('PortForwards');
    const passt =
      str('HostStack') === 'passt'
        ? {
            ...(str('HostStackGuestAddress') ? { guestAddress: str('HostStackGuestAddress') } : {}),
            ...(str('HostStackGateway') ? { gateway: str('HostStackGateway') } : {}),
            forwards: Array.isArray(forwards) ? forwards.map(String) : [],
          }
        : undefined;
    if (str('HostStack') !== undefined && !passt) return this.failed('Creating Switch', 32773, `HostStack must be 'passt' or empty, not "${str('HostStack')}"`);
    try {
      const s = await this.service!.create({
        name,
        type,
        ...(Array.isArray(notes) && notes.length ? { notes: notes.map(String).join('\n') } : {}),
        ...(passt ? { passt } : {}),
      });
      return { returnValue: 0, out: { ResultingSystem: switchPathOf(s.id) } };
    } catch (e) {
      return this.failed('Creating Switch', 32773, (e as Error).message);
    }
  }

  private async destroy(p: Params): Promise<CimMethodResult> {
    const ref = p.AffectedSystem as CimObjectPath | null | undefined;
    const id = ref ? String(keyValue(ref, 'Name') ?? '') : '';
    const r = await this.service!.remove(id);
    return r.returnValue === 0 ? { returnValue: 0, out: {} } : this.failed('Removing Switch', r.returnValue, r.error ?? 'failed');
  }

  private failed(what: string, code: number, description: string): CimMethodResult {
    const job = this.jobs.start(what, null);
    this.jobs.finish(job, code, description);
    return { returnValue: 4096, out: { Job: job } };
  }
}
