/**
 * Live migration's classes of root\virtualization\v2 (Microsoft's Hyper-V WMI provider docs:
 * Msvm_VirtualSystemMigrationService, Msvm_VirtualSystemMigrationSettingData). Move-VM calls
 * MigrateVirtualSystemToHost with the VM, the destination host and the migration settings as an
 * embedded instance; the work runs as a job (Msvm_ConcreteJob) that can be cancelled.
 */
import { SnapshotServiceReturnCodes } from './msvm-classes.ts';
import type { CimClassDecl, ValueMap } from './class-declaration.ts';

/** Msvm_VirtualSystemMigrationSettingData.MigrationType. */
export const MigrationTypeValues: ValueMap = {
  32768: 'VirtualSystem',
  32769: 'Storage',
  32770: 'Staged',
  32771: 'VirtualSystemAndStorage',
};

/** Msvm_VirtualSystemMigrationService return codes: the management service's, as the snapshot service's. */
export const MigrationServiceReturnCodes: ValueMap = SnapshotServiceReturnCodes;

export const MsvmMigrationClasses: readonly CimClassDecl[] = [
  { name: 'CIM_VirtualSystemMigrationService', superclass: 'CIM_Service', abstract: true, properties: [] },
  {
    name: 'Msvm_VirtualSystemMigrationService',
    superclass: 'CIM_VirtualSystemMigrationService',
    properties: [{ name: 'MigrationServiceListenerIPAddressList', type: 'string', isArray: true }],
    methods: [
      {
        name: 'MigrateVirtualSystemToHost',
        returnType: 'uint32',
        returnCodes: MigrationServiceReturnCodes,
        parameters: [
          { name: 'ComputerSystem', type: 'reference', referenceClass: 'CIM_ComputerSystem', in: true },
          { name: 'DestinationHost', type: 'string', in: true },
          { name: 'MigrationSettingData', type: 'string', in: true, embeddedInstance: 'Msvm_VirtualSystemMigrationSettingData' },
          { name: 'NewSystemSettingData', type: 'string', in: true, embeddedInstance: 'CIM_VirtualSystemSettingData' },
          { name: 'NewResourceSettingData', type: 'string', isArray: true, in: true, embeddedInstance: 'CIM_ResourceAllocationSettingData' },
          { name: 'Job', type: 'reference', referenceClass: 'CIM_ConcreteJob', out: true },
        ],
      },
    ],
  },
  {
    name: 'Msvm_VirtualSystemMigrationSettingData',
    superclass: 'CIM_SettingData',
    properties: [
      { name: 'MigrationType', type: 'uint16', valueMap: MigrationTypeValues },
      { name: 'Priority', type: 'uint16' },
      { name: 'DestinationIPAddressList', type: 'string', isArray: true },
      { name: 'DestinationPlannedVirtualSystemId', type: 'string' },
      { name: 'RetainVhdCopiesOnSource', type: 'boolean' },
      { name: 'EnableCompression', type: 'boolean' },
      { name: 'CancelIfBlackoutThresholdExceeded', type: 'boolean' },
    ],
  },
];
