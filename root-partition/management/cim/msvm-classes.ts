/**
 * The Hyper-V WMI v2 classes (root\virtualization\v2) a host of this kind serves, with the keys,
 * value maps and method return codes of Microsoft's class pages (MicrosoftDocs
 * win32 desktop-src/HyperV_v2). Associations are in msvm-associations.ts.
 */
import type { CimClassDecl, CimMethodDecl, CimParameterDecl, ValueMap } from './class-declaration.ts';
import { RequestStateChangeReturnCodes } from './cim-base-classes.ts';

/** RequestedState values of Msvm_ComputerSystem.RequestStateChange (Microsoft Docs). */
export const ComputerSystemRequestedState: ValueMap = {
  2: 'Running',
  3: 'Off',
  4: 'Shut Down',
  6: 'Offline (Saved)',
  9: 'Quiesce (Paused)',
  10: 'Reboot',
  11: 'Reset',
};

/** JobState of Msvm_ConcreteJob (Microsoft Docs). */
export const JobStateValues: ValueMap = {
  2: 'New',
  3: 'Starting',
  4: 'Running',
  5: 'Suspended',
  6: 'Shutting Down',
  7: 'Completed',
  8: 'Terminated',
  9: 'Killed',
  10: 'Exception',
  11: 'Service',
};

/** Heartbeat OperationalStatus[0] (Msvm_HeartbeatComponent, Microsoft Docs). */
export const HeartbeatStatusValues: ValueMap = {
  2: 'OK',
  3: 'Degraded',
  12: 'No Contact',
  13: 'Lost Communication',
  15: 'Paused',
};

/** ResourceType values used by the setting data classes (Msvm_ResourceAllocationSettingData, Microsoft Docs). */
export const ResourceTypeValues: ValueMap = {
  3: 'Processor',
  4: 'Memory',
  5: 'IDE Controller',
  6: 'Parallel SCSI HBA',
  10: 'Ethernet Adapter',
  16: 'DVD drive',
  17: 'Disk Drive',
  31: 'Logical Disk',
  33: 'Ethernet Connection',
};

/** GetSummaryInformation RequestedInformation codes (Msvm_VirtualSystemManagementService, Microsoft Docs). */
export const SummaryInformationCodes: ValueMap = {
  0: 'Name',
  1: 'ElementName',
  4: 'NumberOfProcessors',
  100: 'EnabledState',
  101: 'ProcessorLoad',
  103: 'MemoryUsage',
  104: 'Heartbeat',
  105: 'Uptime',
  109: 'HealthState',
};

/**
 * Msvm_VirtualSystemManagementService method return codes: "every method returns 0, or 4096 with
 * out Job REF"; failures use the Msvm codes listed for RequestStateChange (Microsoft Docs).
 */
export const ManagementServiceReturnCodes: ValueMap = {
  0: 'Completed with No Error',
  4096: 'Method Parameters Checked - Job Started',
  32768: 'Failed',
  32769: 'Access Denied',
  32773: 'Invalid parameter',
  32774: 'System is in use',
  32775: 'Invalid state for this operation',
};

/** Msvm_VirtualSystemSnapshotService return codes (Hyper-V v2: the management service's codes). */
export const SnapshotServiceReturnCodes: ValueMap = {
  0: 'Completed with No Error',
  4096: 'Method Parameters Checked - Job Started',
  32768: 'Failed',
  32769: 'Access Denied',
  32770: 'Not Supported',
  32773: 'Invalid parameter',
  32774: 'System is in use',
  32775: 'Invalid state for this operation',
};

const jobOut: CimParameterDecl = { name: 'Job', type: 'reference', referenceClass: 'CIM_ConcreteJob', out: true };

function serviceMethod(name: string, parameters: CimParameterDecl[]): CimMethodDecl {
  return { name, returnType: 'uint32', returnCodes: ManagementServiceReturnCodes, parameters: [...parameters, jobOut] };
}

const embeddedRasd = 'CIM_ResourceAllocationSettingData';

export const MsvmClasses: readonly CimClassDecl[] = [
  {
    name: 'Msvm_ComputerSystem',
    superclass: 'CIM_ComputerSystem',
    description: 'A virtual machine, or the host ("Microsoft Hosting Computer System").',
    properties: [
      { name: 'ProcessID', type: 'uint32' },
      { name: 'OnTimeInMilliseconds', type: 'uint64' },
      { name: 'EnhancedSessionModeState', type: 'uint16' },
    ],
    methods: [
      {
        name: 'RequestStateChange',
        returnType: 'uint32',
        returnCodes: RequestStateChangeReturnCodes,
        parameters: [
          { name: 'RequestedState', type: 'uint16', in: true, valueMap: ComputerSystemRequestedState },
          { name: 'Job', type: 'reference', referenceClass: 'CIM_ConcreteJob', out: true },
          { name: 'TimeoutPeriod', type: 'datetime', in: true },
        ],
      },
    ],
  },
  {
    name: 'Msvm_VirtualSystemManagementService',
    superclass: 'CIM_VirtualSystemManagementService',
    properties: [],
    methods: [
      serviceMethod('DefineSystem', [
        { name: 'SystemSettings', type: 'string', in: true, embeddedInstance: 'CIM_VirtualSystemSettingData' },
        { name: 'ResourceSettings', type: 'string', isArray: true, in: true, embeddedInstance: embeddedRasd },
        { name: 'ReferenceConfiguration', type: 'reference', referenceClass: 'CIM_VirtualSystemSettingData', in: true },
        { name: 'ResultingSystem', type: 'reference', referenceClass: 'CIM_ComputerSystem', out: true },
      ]),
      serviceMethod('DestroySystem', [{ name: 'AffectedSystem', type: 'reference', referenceClass: 'CIM_ComputerSystem', in: true }]),
      serviceMethod('ModifySystemSettings', [{ name: 'SystemSettings', type: 'string', in: true, embeddedInstance: 'CIM_VirtualSystemSettingData' }]),
      serviceMethod('AddResourceSettings', [
        { name: 'AffectedConfiguration', type: 'reference', referenceClass: 'CIM_VirtualSystemSettingData', in: true },
        { name: 'ResourceSettings', type: 'string', isArray: true, in: true, embeddedInstance: embeddedRasd },
        { name: 'ResultingResourceSettings', type: 'reference', isArray: true, referenceClass: embeddedRasd, out: true },
      ]),
      serviceMethod('ModifyResourceSettings', [
        { name: 'ResourceSettings', type: 'string', isArray: true, in: true, embeddedInstance: embeddedRasd },
        { name: 'ResultingResourceSettings', type: 'reference', isArray: true, referenceClass: embeddedRasd, out: true },
      ]),
      serviceMethod('RemoveResourceSettings', [{ name: 'ResourceSettings', type: 'reference', isArray: true, referenceClass: embeddedRasd, in: true }]),
      serviceMethod('AddKvpItems', [
        { name: 'TargetSystem', type: 'reference', referenceClass: 'CIM_ComputerSystem', in: true },
        { name: 'DataItems', type: 'string', isArray: true, in: true, embeddedInstance: 'Msvm_KvpExchangeDataItem' },
      ]),
      serviceMethod('ModifyKvpItems', [
        { name: 'TargetSystem', type: 'reference', referenceClass: 'CIM_ComputerSystem', in: true },
        { name: 'DataItems', type: 'string', isArray: true, in: true, embeddedInstance: 'Msvm_KvpExchangeDataItem' },
      ]),
      serviceMethod('RemoveKvpItems', [
        { name: 'TargetSystem', type: 'reference', referenceClass: 'CIM_ComputerSystem', in: true },
        { name: 'DataItems', type: 'string', isArray: true, in: true, embeddedInstance: 'Msvm_KvpExchangeDataItem' },
      ]),
      {
        name: 'GetSummaryInformation',
        returnType: 'uint32',
        returnCodes: ManagementServiceReturnCodes,
        parameters: [
          { name: 'SettingData', type: 'reference', isArray: true, referenceClass: 'CIM_VirtualSystemSettingData', in: true },
          { name: 'RequestedInformation', type: 'uint32', isArray: true, in: true, valueMap: SummaryInformationCodes },
          { name: 'SummaryInformation', type: 'string', isArray: true, out: true, embeddedInstance: 'Msvm_SummaryInformation' },
        ],
      },
    ],
  },
  {
    // Checkpoint-VM / Restore-VMSnapshot / Remove-VMSnapshot (Msvm_VirtualSystemSnapshotService, Microsoft Docs).
    name: 'Msvm_VirtualSystemSnapshotService',
    superclass: 'CIM_VirtualSystemSnapshotService',
    properties: [],
    methods: [
      {
        name: 'CreateSnapshot',
        returnType: 'uint32',
        returnCodes: SnapshotServiceReturnCodes,
        parameters: [
          { name: 'AffectedSystem', type: 'reference', referenceClass: 'CIM_ComputerSystem', in: true },
          { name: 'SnapshotSettings', type: 'string', in: true, embeddedInstance: 'CIM_VirtualSystemSettingData' },
          { name: 'SnapshotType', type: 'uint16', in: true, valueMap: { 2: 'Full Snapshot', 3: 'Disk Snapshot' } },
          { name: 'ResultingSnapshot', type: 'reference', referenceClass: 'CIM_VirtualSystemSettingData', in: true, out: true },
          jobOut,
        ],
      },
      {
        name: 'ApplySnapshot',
        returnType: 'uint32',
        returnCodes: SnapshotServiceReturnCodes,
        parameters: [{ name: 'Snapshot', type: 'reference', referenceClass: 'CIM_VirtualSystemSettingData', in: true }, jobOut],
      },
      {
        name: 'DestroySnapshot',
        returnType: 'uint32',
        returnCodes: SnapshotServiceReturnCodes,
        parameters: [{ name: 'AffectedSnapshot', type: 'reference', referenceClass: 'CIM_VirtualSystemSettingData', in: true }, jobOut],
      },
      {
        name: 'DestroySnapshotTree',
        returnType: 'uint32',
        returnCodes: SnapshotServiceReturnCodes,
        parameters: [{ name: 'SnapshotSettingData', type: 'reference', referenceClass: 'CIM_VirtualSystemSettingData', in: true }, jobOut],
      },
    ],
  },
  {
    name: 'Msvm_VirtualSystemSettingData',
    superclass: 'CIM_VirtualSystemSettingData',
    properties: [
      { name: 'VirtualSystemType', type: 'string', description: 'Microsoft:Hyper-V:System:Realized or Microsoft:Hyper-V:Snapshot:Realized' },
      { name: 'AutomaticStartupAction', type: 'uint16', description: 'libvirt writes 4 for autostart on, 2 for off' },
      { name: 'VirtualSystemSubType', type: 'string' },
      { name: 'Version', type: 'string' },
      { name: 'ConfigurationDataRoot', type: 'string' },
      { name: 'ConfigurationFile', type: 'string' },
      { name: 'IsSaved', type: 'boolean' },
      // A snapshot's parent snapshot (its VSSD object path), NULL for a root one and the VM's own settings.
      { name: 'Parent', type: 'string' },
      // tsvisor extensions: a WebAssembly guest boots from an image and a command line, which
      // Hyper-V (booting from the VM's disks) has no property for.
      { name: 'GuestImagePath', type: 'string', description: 'tsvisor: the guest image (.wasm) the VM boots' },
      { name: 'GuestCommandLine', type: 'string', description: 'tsvisor: the kernel command line of the boot-information block' },
      {
        name: 'GuestKind',
        type: 'string',
        description:
          "tsvisor: 'linux' for the built-in Linux guest on the x86 VP kind (GuestImagePath is then its manifest); empty for a WebAssembly guest image",
      },
    ],
  },
  {
    name: 'Msvm_ResourceAllocationSettingData',
    superclass: 'CIM_ResourceAllocationSettingData',
    properties: [{ name: 'ResourceType', type: 'uint16', valueMap: ResourceTypeValues }],
  },
  {
    name: 'Msvm_ProcessorSettingData',
    superclass: 'CIM_ResourceAllocationSettingData',
    properties: [{ name: 'ResourceType', type: 'uint16', valueMap: ResourceTypeValues }],
  },
  {
    name: 'Msvm_MemorySettingData',
    superclass: 'CIM_ResourceAllocationSettingData',
    properties: [
      { name: 'ResourceType', type: 'uint16', valueMap: ResourceTypeValues },
      { name: 'DynamicMemoryEnabled', type: 'boolean' },
    ],
  },
  // Integration-service settings (Enable-/Disable-VMIntegrationService modify EnabledState).
  ...['Heartbeat', 'Shutdown', 'TimeSync', 'KvpExchange'].map((ic) => ({
    name: `Msvm_${ic}ComponentSettingData`,
    superclass: 'CIM_ResourceAllocationSettingData',
    properties: [{ name: 'EnabledState', type: 'uint16' as const, valueMap: { 2: 'Enabled', 3: 'Disabled' } }],
  })),
  {
    name: 'Msvm_StorageAllocationSettingData',
    superclass: 'CIM_StorageAllocationSettingData',
    properties: [{ name: 'ResourceType', type: 'uint16', valueMap: ResourceTypeValues }],
  },
  {
    name: 'Msvm_SyntheticEthernetPortSettingData',
    superclass: 'CIM_ResourceAllocationSettingData',
    properties: [
      { name: 'StaticMacAddress', type: 'boolean' },
      // tsvisor extension: Hyper-V spreads a synthetic NIC over VMBus sub-channels by its own policy
      // (vRSS; Msvm_EthernetSwitchPortOffloadSettingData has VrssEnabled and VrssMinQueuePairs, no
      // maximum), so the cap is a property of its own here.
      {
        name: 'MaxChannels',
        type: 'uint32',
        description:
          'tsvisor: VMBus channels (receive queues) the guest may open on this adapter, the primary included, 1..64 (NVSP SUBCHANNEL grants up to MaxChannels − 1); NULL: 8, never more than the host has cores',
      },
    ],
  },
  {
    name: 'Msvm_EmulatedEthernetPortSettingData',
    superclass: 'CIM_ResourceAllocationSettingData',
    properties: [{ name: 'StaticMacAddress', type: 'boolean' }],
  },
  { name: 'Msvm_EthernetPortAllocationSettingData', superclass: 'CIM_EthernetPortAllocationSettingData', properties: [] },
  {
    name: 'Msvm_ConcreteJob',
    superclass: 'CIM_ConcreteJob',
    properties: [
      { name: 'JobState', type: 'uint16', valueMap: JobStateValues },
      { name: 'JobType', type: 'uint16' },
      { name: 'Cancellable', type: 'boolean' },
    ],
    methods: [
      {
        name: 'RequestStateChange',
        returnType: 'uint32',
        returnCodes: RequestStateChangeReturnCodes,
        parameters: [
          // Msvm_ConcreteJob (Microsoft Docs): job RequestStateChange 4 Terminate, 5 Kill.
          { name: 'RequestedState', type: 'uint16', in: true, valueMap: { 4: 'Terminate', 5: 'Kill' } },
          { name: 'TimeoutPeriod', type: 'datetime', in: true },
        ],
      },
    ],
  },
  {
    name: 'Msvm_ShutdownComponent',
    superclass: 'CIM_LogicalDevice',
    properties: [],
    methods: [
      {
        // Msvm_ShutdownComponent.InitiateShutdown adds 32770 Not Supported to the service codes.
        name: 'InitiateShutdown',
        returnType: 'uint32',
        returnCodes: { ...ManagementServiceReturnCodes, 32770: 'Not Supported' },
        parameters: [
          { name: 'Force', type: 'boolean', in: true },
          { name: 'Reason', type: 'string', in: true },
        ],
      },
    ],
  },
  {
    // One per VP of a running VM; LoadPercentage: the VP's use of its processor over the last second.
    name: 'Msvm_Processor',
    superclass: 'CIM_LogicalDevice',
    properties: [{ name: 'LoadPercentage', type: 'uint16' }],
  },
  {
    name: 'Msvm_HeartbeatComponent',
    superclass: 'CIM_LogicalDevice',
    properties: [{ name: 'OperationalStatus', type: 'uint16', isArray: true, valueMap: HeartbeatStatusValues }],
  },
  {
    name: 'Msvm_KvpExchangeComponent',
    superclass: 'CIM_LogicalDevice',
    properties: [
      { name: 'GuestIntrinsicExchangeItems', type: 'string', isArray: true, embeddedInstance: 'Msvm_KvpExchangeDataItem' },
      { name: 'GuestExchangeItems', type: 'string', isArray: true, embeddedInstance: 'Msvm_KvpExchangeDataItem' },
    ],
  },
  {
    // Carried only as embedded instances (KVP items); no keys.
    name: 'Msvm_KvpExchangeDataItem',
    superclass: 'CIM_ManagedElement',
    properties: [
      { name: 'Name', type: 'string' },
      { name: 'Data', type: 'string' },
      { name: 'Source', type: 'uint16' },
    ],
  },
  {
    // Carried only as embedded instances (GetSummaryInformation); no keys.
    name: 'Msvm_SummaryInformation',
    superclass: 'CIM_ManagedElement',
    properties: [
      { name: 'Name', type: 'string' },
      { name: 'NumberOfProcessors', type: 'uint16' },
      { name: 'EnabledState', type: 'uint16' },
      { name: 'ProcessorLoad', type: 'uint16' },
      { name: 'MemoryUsage', type: 'uint64' },
      { name: 'Heartbeat', type: 'uint16' },
      { name: 'UpTime', type: 'uint64' },
      { name: 'HealthState', type: 'uint16' },
      { name: 'OperationalStatus', type: 'uint16', isArray: true },
    ],
  },
];
