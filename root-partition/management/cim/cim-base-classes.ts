/**
 * The DMTF CIM Schema classes the Msvm classes derive from, reduced to the properties and
 * methods Hyper-V's v2 model uses (DMTF CIM Schema 2.x; the CLASSORIGIN values wbemcli reads in
 * its GetClass replies: CreationClassName from CIM_System, Name from CIM_ManagedSystemElement,
 * EnabledState and RequestStateChange from CIM_EnabledLogicalElement).
 */
import type { CimClassDecl, ValueMap } from './class-declaration.ts';

/** EnabledState (Msvm_ComputerSystem, Microsoft Docs; CIM_EnabledLogicalElement plus Msvm vendor values). */
export const EnabledStateValues: ValueMap = {
  0: 'Unknown',
  2: 'Enabled',
  3: 'Disabled',
  4: 'Shutting Down',
  6: 'Enabled but Offline',
  9: 'Quiesce',
  10: 'Starting',
  32773: 'Saving',
  32776: 'Pausing',
  32777: 'Resuming',
};

/** HealthState (Msvm_ComputerSystem, Microsoft Docs). */
export const HealthStateValues: ValueMap = { 5: 'OK', 20: 'Major Failure', 25: 'Critical Failure' };

/** RequestStateChange return codes (Msvm_ComputerSystem, Microsoft Docs: CIM codes then Msvm codes). */
export const RequestStateChangeReturnCodes: ValueMap = {
  0: 'Completed with No Error',
  4096: 'Method Parameters Checked - Transition Started',
  4097: 'Invalid State Transition',
  4098: 'Use of Timeout Parameter Not Supported',
  4099: 'Busy',
  32768: 'Failed',
  32769: 'Access Denied',
  32773: 'Invalid parameter',
  32774: 'System is in use',
  32775: 'Invalid state for this operation',
};

export const CimBaseClasses: readonly CimClassDecl[] = [
  {
    name: 'CIM_ManagedElement',
    abstract: true,
    properties: [
      { name: 'InstanceID', type: 'string' },
      { name: 'Caption', type: 'string' },
      { name: 'Description', type: 'string' },
      { name: 'ElementName', type: 'string' },
    ],
  },
  {
    name: 'CIM_ManagedSystemElement',
    superclass: 'CIM_ManagedElement',
    abstract: true,
    properties: [
      { name: 'InstallDate', type: 'datetime' },
      { name: 'Name', type: 'string' },
      { name: 'OperationalStatus', type: 'uint16', isArray: true },
      { name: 'StatusDescriptions', type: 'string', isArray: true },
      { name: 'HealthState', type: 'uint16', valueMap: HealthStateValues },
    ],
  },
  { name: 'CIM_LogicalElement', superclass: 'CIM_ManagedSystemElement', abstract: true, properties: [] },
  {
    name: 'CIM_EnabledLogicalElement',
    superclass: 'CIM_LogicalElement',
    abstract: true,
    properties: [
      { name: 'EnabledState', type: 'uint16', valueMap: EnabledStateValues },
      { name: 'RequestedState', type: 'uint16' },
      { name: 'EnabledDefault', type: 'uint16' },
      { name: 'TimeOfLastStateChange', type: 'datetime' },
      { name: 'AvailableRequestedStates', type: 'uint16', isArray: true },
      { name: 'TransitioningToState', type: 'uint16' },
    ],
    methods: [
      {
        name: 'RequestStateChange',
        returnType: 'uint32',
        returnCodes: RequestStateChangeReturnCodes,
        parameters: [
          { name: 'RequestedState', type: 'uint16', in: true },
          { name: 'Job', type: 'reference', referenceClass: 'CIM_ConcreteJob', out: true },
          { name: 'TimeoutPeriod', type: 'datetime', in: true },
        ],
      },
    ],
  },
  {
    name: 'CIM_System',
    superclass: 'CIM_EnabledLogicalElement',
    abstract: true,
    properties: [
      { name: 'CreationClassName', type: 'string', key: true },
      { name: 'Name', type: 'string', key: true },
    ],
  },
  { name: 'CIM_ComputerSystem', superclass: 'CIM_System', properties: [] },
  {
    name: 'CIM_Service',
    superclass: 'CIM_EnabledLogicalElement',
    abstract: true,
    // Key order as wbemcli users write the service path (wbemcli(1) object paths).
    properties: [
      { name: 'CreationClassName', type: 'string', key: true },
      { name: 'Name', type: 'string', key: true },
      { name: 'SystemCreationClassName', type: 'string', key: true },
      { name: 'SystemName', type: 'string', key: true },
    ],
  },
  { name: 'CIM_VirtualSystemManagementService', superclass: 'CIM_Service', abstract: true, properties: [] },
  { name: 'CIM_VirtualSystemSnapshotService', superclass: 'CIM_Service', abstract: true, properties: [] },
  {
    name: 'CIM_LogicalDevice',
    superclass: 'CIM_EnabledLogicalElement',
    abstract: true,
    properties: [
      { name: 'SystemCreationClassName', type: 'string', key: true },
      { name: 'SystemName', type: 'string', key: true },
      { name: 'CreationClassName', type: 'string', key: true },
      { name: 'DeviceID', type: 'string', key: true },
    ],
  },
  {
    name: 'CIM_SettingData',
    superclass: 'CIM_ManagedElement',
    abstract: true,
    properties: [{ name: 'InstanceID', type: 'string', key: true }],
  },
  {
    name: 'CIM_VirtualSystemSettingData',
    superclass: 'CIM_SettingData',
    abstract: true,
    properties: [
      { name: 'VirtualSystemIdentifier', type: 'string' },
      { name: 'VirtualSystemType', type: 'string' },
      { name: 'Notes', type: 'string', isArray: true },
      { name: 'CreationTime', type: 'datetime' },
      { name: 'ConfigurationID', type: 'string' },
      { name: 'AutomaticStartupAction', type: 'uint16' },
      { name: 'AutomaticShutdownAction', type: 'uint16' },
    ],
  },
  {
    name: 'CIM_ResourceAllocationSettingData',
    superclass: 'CIM_SettingData',
    abstract: true,
    properties: [
      { name: 'ResourceType', type: 'uint16' },
      { name: 'OtherResourceType', type: 'string' },
      { name: 'ResourceSubType', type: 'string' },
      { name: 'PoolID', type: 'string' },
      { name: 'ConsumerVisibility', type: 'uint16' },
      { name: 'HostResource', type: 'string', isArray: true },
      { name: 'AllocationUnits', type: 'string' },
      { name: 'VirtualQuantity', type: 'uint64' },
      { name: 'Reservation', type: 'uint64' },
      { name: 'Limit', type: 'uint64' },
      { name: 'Weight', type: 'uint32' },
      { name: 'AutomaticAllocation', type: 'boolean' },
      { name: 'AutomaticDeallocation', type: 'boolean' },
      { name: 'Parent', type: 'string' },
      { name: 'Connection', type: 'string', isArray: true },
      { name: 'Address', type: 'string' },
      { name: 'AddressOnParent', type: 'string' },
      { name: 'VirtualQuantityUnits', type: 'string' },
    ],
  },
  { name: 'CIM_StorageAllocationSettingData', superclass: 'CIM_ResourceAllocationSettingData', abstract: true, properties: [] },
  {
    name: 'CIM_EthernetPortAllocationSettingData',
    superclass: 'CIM_ResourceAllocationSettingData',
    abstract: true,
    properties: [{ name: 'EnabledState', type: 'uint16' }],
  },
  {
    name: 'CIM_Job',
    superclass: 'CIM_LogicalElement',
    abstract: true,
    properties: [
      { name: 'JobStatus', type: 'string' },
      { name: 'TimeSubmitted', type: 'datetime' },
      { name: 'StartTime', type: 'datetime' },
      { name: 'ElapsedTime', type: 'datetime' },
      { name: 'PercentComplete', type: 'uint16' },
      { name: 'DeleteOnCompletion', type: 'boolean' },
      { name: 'ErrorCode', type: 'uint16' },
      { name: 'ErrorDescription', type: 'string' },
    ],
  },
  {
    name: 'CIM_ConcreteJob',
    superclass: 'CIM_Job',
    abstract: true,
    properties: [
      { name: 'InstanceID', type: 'string', key: true },
      { name: 'JobState', type: 'uint16' },
      { name: 'TimeOfLastStateChange', type: 'datetime' },
      { name: 'TimeBeforeRemoval', type: 'datetime' },
    ],
  },
];
