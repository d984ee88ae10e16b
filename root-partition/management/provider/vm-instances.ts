/**
 * The Msvm instances of one VM, built from what the VMMS holds now: Msvm_ComputerSystem, its
 * Msvm_VirtualSystemSettingData with processor, memory and storage settings, its integration
 * components, and the associations between them (Microsoft Docs). Nothing is cached
 * here: every enumeration reads the live VM.
 */
import { userVspSettings } from './user-vsp-settings.ts';
import type { CimInstance } from '../cim/instance.ts';
import type { CimSchema } from '../cim/schema.ts';
import {
  INTEGRATION_SETTING_NAMES,
  integrationFlagsOf,
  integrationServicesOf,
  IntegrationServiceGuid,
  IntegrationServiceSettings,
  integrationSettingInstanceId,
  storageSettings,
  type IntegrationServiceName,
} from './device-settings.ts';
import { networkSettings, type SwitchRef } from './network-settings.ts';
import type { VmRecord } from './vmms-port.ts';

export const VM_DESCRIPTION = 'Microsoft Virtual Machine';
export const HOST_DESCRIPTION = 'Microsoft Hosting Computer System';
export const SERVICE_NAME = 'vmms';

/** RequestedState 12: "Not Applicable", no state change asked (Msvm_ComputerSystem). */
export const NO_REQUESTED_STATE = 12;

/** Hyper-V's device GUIDs of the processor and memory settings, part of their InstanceIDs. */
const PROCESSOR_GUID = 'B637F346-6A0E-4DEC-AF52-BD70CB80A21D';
const MEMORY_GUID = '4764334D-E001-4176-82EE-5594EC9B530E';

const IC_CLASS: Record<IntegrationServiceName, string> = {
  shutdown: 'Msvm_ShutdownComponent',
  heartbeat: 'Msvm_HeartbeatComponent',
  kvp: 'Msvm_KvpExchangeComponent',
};
const IC_ELEMENT_NAME: Record<IntegrationServiceName, string> = {
  shutdown: 'Shutdown',
  heartbeat: 'Heartbeat',
  kvp: 'Key-Value Pair Exchange',
};

/** DMTF datetime text (DSP0004 "Datetime"): yyyymmddHHMMSS.mmmmmm+UUU, in UTC. */
export function dmtfDatetime(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds() * 1000, 6)}+000`;
}

export const vssdInstanceId = (vmId: string) => `Microsoft:${vmId}`;
export const processorInstanceId = (vmId: string) => `Microsoft:${vmId}\\${PROCESSOR_GUID}\\0`;
export const memoryInstanceId = (vmId: string) => `Microsoft:${vmId}\\${MEMORY_GUID}`;

/** What the provider tracks about a VM beyond the VMMS's view. */
export interface VmTracking {
  requestedState: number;
  timeOfLastStateChange: Date;
}

export interface VmObjects {
  readonly system: CimInstance;
  readonly settings: CimInstance;
  readonly resources: CimInstance[];
  readonly components: CimInstance[];
  readonly associations: CimInstance[];
}

export function computerSystemOf(schema: CimSchema, vm: VmRecord, t: VmTracking): CimInstance {
  const degraded = vm.healthState !== 5;
  return schema.createInstance('Msvm_ComputerSystem', {
    CreationClassName: 'Msvm_ComputerSystem',
    Name: vm.id,
    ElementName: vm.name,
    Caption: 'Virtual Machine',
    Description: VM_DESCRIPTION,
    EnabledState: vm.enabledState,
    RequestedState: t.requestedState,
    EnabledDefault: 2,
    HealthState: vm.healthState,
    OperationalStatus: [degraded ? 3 : 2],
    StatusDescriptions: [vm.lastError ?? (degraded ? 'Degraded' : 'Operating normally')],
    TimeOfLastStateChange: dmtfDatetime(t.timeOfLastStateChange),
    AvailableRequestedStates: [...vm.availableRequestedStates],
    ProcessID: vm.processId,
    OnTimeInMilliseconds: BigInt(vm.uptimeMs ?? 0),
  });
}

export function hostSystemOf(schema: CimSchema, hostName: string): CimInstance {
  return schema.createInstance('Msvm_ComputerSystem', {
    CreationClassName: 'Msvm_ComputerSystem',
    Name: hostName,
    ElementName: hostName,
    Caption: 'Hosting Computer System',
    Description: HOST_DESCRIPTION,
    EnabledState: 2,
    RequestedState: NO_REQUESTED_STATE,
    HealthState: 5,
    OperationalStatus: [2],
    ProcessID: process.pid,
  });
}

export function managementServiceOf(schema: CimSchema, hostName: string): CimInstance {
  return schema.createInstance('Msvm_VirtualSystemManagementService', {
    CreationClassName: 'Msvm_VirtualSystemManagementService',
    Name: SERVICE_NAME,
    SystemCreationClassName: 'Msvm_ComputerSystem',
    SystemName: hostName,
    ElementName: 'Virtual System Management Service',
    Caption: 'Hyper-V Virtual System Management Service',
    EnabledState: 2,
    HealthState: 5,
    OperationalStatus: [2],
  });
}

/** VSSD AutomaticStartupAction for each start action. */
export const START_ACTION_CODE: Record<string, number> = { nothing: 2, 'start-if-running': 3, start: 4 };

export function settingsOf(schema: CimSchema, vm: VmRecord, configurationFile: string): CimInstance {
  return schema.createInstance('Msvm_VirtualSystemSettingData', {
    InstanceID: vssdInstanceId(vm.id),
    ElementName: vm.name,
    Caption: 'Virtual Machine Settings',
    VirtualSystemIdentifier: vm.id,
    ConfigurationID: vm.id,
    VirtualSystemType: 'Microsoft:Hyper-V:System:Realized',
    // Emulated IDE controllers make it a generation 1 VM.
    VirtualSystemSubType: 'Microsoft:Hyper-V:SubType:1',
    Version: '1',
    // Hyper-V: 2 None, 3 Save State for the stop action; 2 None, 3 Restart if previously active, 4 Always startup for the start action.
    AutomaticStartupAction: START_ACTION_CODE[vm.automaticStartAction ?? 'nothing'] ?? 2,
    AutomaticShutdownAction: vm.automaticStopAction === 'save' ? 3 : 2,
    Notes: vm.notes ? [vm.notes] : null,
    ConfigurationFile: configurationFile,
    IsSaved: vm.enabledState === 6,
    GuestImagePath: vm.imagePath,
    GuestCommandLine: vm.cmdline,
    GuestKind: vm.guest ?? '',
  });
}

/** Msvm_HeartbeatComponent OperationalStatus[0] values and their descriptions (Microsoft Docs). */
const HEARTBEAT_DESCRIPTION: Record<number, string> = { 2: 'OK', 3: 'Degraded', 12: 'No Contact', 13: 'Lost Communication', 15: 'Paused' };

/**
 * The heartbeat as the worker last pushed it (VmRecord.heartbeatStatus). Without a running worker
 * there is nothing to be in contact with: 12 No Contact; 0 Unknown only for a value not in the model.
 */
function heartbeatStatusOf(vm: VmRecord): { OperationalStatus: number[]; StatusDescriptions: string[] } {
  const s = vm.heartbeatStatus ?? 12;
  const text = HEARTBEAT_DESCRIPTION[s];
  return text ? { OperationalStatus: [s], StatusDescriptions: [text] } : { OperationalStatus: [0], StatusDescriptions: ['Unknown'] };
}

/** Msvm_KvpExchangeDataItem.Source: the KVP pool the item lives in (Linux KVP_POOL_*: 0 External, 1 Guest, 2 Auto, 3 AutoExternal). */
export const KvpItemSource = { External: 0, Guest: 1, Auto: 2, AutoExternal: 3 } as const;

/** Embedded Msvm_KvpExchangeDataItem instances; null (not read from the guest yet) stays NULL. */
function kvpItemsOf(schema: CimSchema, items: VmRecord['kvpGuestItems'], source: number): CimInstance[] | null {
  if (!items) return null;
  return items.map(([name, data]) =>
    schema.createInstance('Msvm_KvpExchangeDataItem', {
      Caption: 'Key-Value Pair Exchange Data Item',
      Description: 'Microsoft Key-Value Pair Exchange Data Item',
      ElementName: 'Key-Value Pair Exchange Data Item',
      Name: name,
      Data: data,
      Source: source,
    }),
  );
}

/** One Msvm_*ComponentSettingData per integration service, enabled (2) or disabled (3), as Hyper-V lists them for every VM. */
function integrationSettingsOf(schema: CimSchema, vm: VmRecord): CimInstance[] {
  const flags = integrationFlagsOf(vm.devices);
  return INTEGRATION_SETTING_NAMES.map((ic) =>
    schema.createInstance(IntegrationServiceSettings[ic].className, {
      InstanceID: integrationSettingInstanceId(vm.id, ic),
      ElementName: IntegrationServiceSettings[ic].name,
      ResourceType: 1,
      OtherResourceType: `Microsoft ${IntegrationServiceSettings[ic].name} Component`,
      EnabledState: flags[ic] ? 2 : 3,
    }),
  );
}

export function buildVmObjects(
  schema: CimSchema,
  hostName: string,
  vm: VmRecord,
  t: VmTracking,
  configurationFile: string,
  switches: readonly SwitchRef[] = [],
): VmObjects {
  const system = computerSystemOf(schema, vm, t);
  const settings = settingsOf(schema, vm, configurationFile);
  const mib = BigInt(Math.floor(vm.memoryBytes / (1024 * 1024)));
  const resources: CimInstance[] = [
    schema.createInstance('Msvm_ProcessorSettingData', {
      InstanceID: processorInstanceId(vm.id),
      ElementName: 'Processor',
      ResourceType: 3,
      ResourceSubType: 'Microsoft:Hyper-V:Processor',
      AllocationUnits: 'percent / 1000',
      VirtualQuantity: BigInt(vm.vpCount),
      Reservation: BigInt(Math.round((vm.cpuReserve ?? 0) * 1000)),
      Limit: BigInt(Math.round((vm.cpuMaximum ?? 100) * 1000)),
      Weight: vm.cpuWeight ?? 100,
    }),
    schema.createInstance('Msvm_MemorySettingData', {
      InstanceID: memoryInstanceId(vm.id),
      ElementName: 'Memory',
      ResourceType: 4,
      ResourceSubType: 'Microsoft:Hyper-V:Memory',
      AllocationUnits: 'byte*2^20',
      VirtualQuantity: mib,
      Reservation: mib,
      Limit: mib,
      DynamicMemoryEnabled: false,
    }),
    ...storageSettings(vm.id, vm.devices).map((r) => schema.createInstance(r.className, r.values)),
    ...userVspSettings(vm.id, vm.devices).map((r) => schema.createInstance(r.className, r.values)),
    ...networkSettings(vm.id, hostName, vm.devices, switches).map((r) => schema.createInstance(r.className, r.values)),
    ...integrationSettingsOf(schema, vm),
  ];
  const components = integrationServicesOf(vm.devices).map((ic) =>
    schema.createInstance(IC_CLASS[ic], {
      SystemCreationClassName: 'Msvm_ComputerSystem',
      SystemName: vm.id,
      CreationClassName: IC_CLASS[ic],
      DeviceID: `Microsoft:${vm.id}\\${IntegrationServiceGuid[ic]}`,
      ElementName: IC_ELEMENT_NAME[ic],
      EnabledState: vm.enabledState === 2 ? 2 : 3,
      HealthState: 5,
      ...(ic === 'heartbeat' ? heartbeatStatusOf(vm) : { OperationalStatus: [2], StatusDescriptions: ['OK'] }),
      ...(ic === 'kvp'
        ? {
            GuestIntrinsicExchangeItems: kvpItemsOf(schema, vm.kvpIntrinsicItems, KvpItemSource.Auto),
            GuestExchangeItems: kvpItemsOf(schema, vm.kvpGuestItems, KvpItemSource.Guest),
          }
        : {}),
    }),
  );
  // The VM's processors while it runs (Hyper-V lists none for a VM that is off), with their load.
  if (vm.processId !== null) {
    for (let vp = 0; vp < vm.vpCount; vp++) {
      const load = vm.vpCpuUsage?.[vp];
      components.push(
        schema.createInstance('Msvm_Processor', {
          SystemCreationClassName: 'Msvm_ComputerSystem',
          SystemName: vm.id,
          CreationClassName: 'Msvm_Processor',
          DeviceID: `Microsoft:${vm.id}\\${vp}`,
          ElementName: `Processor ${vp}`,
          EnabledState: 2,
          HealthState: 5,
          LoadPercentage: load === undefined || load === null ? null : Math.round(load),
        }),
      );
    }
  }
  const systemPath = schema.pathOf(system);
  const settingsPath = schema.pathOf(settings);
  const associations: CimInstance[] = [
    schema.createInstance('Msvm_SettingsDefineState', { ManagedElement: systemPath, SettingData: settingsPath }),
    schema.createInstance('Msvm_ElementSettingData', { ManagedElement: systemPath, SettingData: settingsPath, IsDefault: 2, IsCurrent: 1 }),
    ...resources.map((r) => schema.createInstance('Msvm_VirtualSystemSettingDataComponent', { GroupComponent: settingsPath, PartComponent: schema.pathOf(r) })),
    ...components.map((c) => schema.createInstance('Msvm_SystemDevice', { GroupComponent: systemPath, PartComponent: schema.pathOf(c) })),
  ];
  return { system, settings, resources, components, associations };
}
