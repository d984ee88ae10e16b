/**
 * The virtual hard disk classes of root\virtualization\v2 (MicrosoftDocs HyperV_v2
 * Msvm_ImageManagementService, Msvm_VirtualHardDiskSettingData, Msvm_VirtualHardDiskState):
 * New-VHD, Get-VHD, Convert-VHD, Merge-VHD, Resize-VHD and Optimize-VHD call the service with the
 * disk's settings as an embedded Msvm_VirtualHardDiskSettingData instance (CreateVirtualHardDisk,
 * ConvertVirtualHardDisk) or with paths.
 */
import { SnapshotServiceReturnCodes } from './msvm-classes.ts';
import type { CimClassDecl, CimParameterDecl, ValueMap } from './class-declaration.ts';

/** Msvm_ImageManagementService return codes (the management service's, plus 32770 Not Supported). */
export const ImageServiceReturnCodes: ValueMap = SnapshotServiceReturnCodes;

/** Msvm_VirtualHardDiskSettingData.Type. */
export const VirtualHardDiskTypeValues: ValueMap = { 2: 'Fixed', 3: 'Dynamic', 4: 'Differencing' };
/** Msvm_VirtualHardDiskSettingData.Format; 0 is tsvisor's for a raw image (Hyper-V has no such format). */
export const VirtualHardDiskFormatValues: ValueMap = { 0: 'Unknown', 2: 'VHD', 3: 'VHDX', 4: 'VHDSet' };

const jobOut: CimParameterDecl = { name: 'Job', type: 'reference', referenceClass: 'CIM_ConcreteJob', out: true };

function method(name: string, parameters: CimParameterDecl[]) {
  return { name, returnType: 'uint32' as const, returnCodes: ImageServiceReturnCodes, parameters: [...parameters, jobOut] };
}

export const MsvmImageClasses: readonly CimClassDecl[] = [
  {
    name: 'Msvm_ImageManagementService',
    superclass: 'CIM_Service',
    properties: [],
    methods: [
      method('CreateVirtualHardDisk', [{ name: 'VirtualDiskSettingData', type: 'string', in: true, embeddedInstance: 'Msvm_VirtualHardDiskSettingData' }]),
      method('GetVirtualHardDiskSettingData', [
        { name: 'Path', type: 'string', in: true },
        { name: 'SettingData', type: 'string', out: true, embeddedInstance: 'Msvm_VirtualHardDiskSettingData' },
      ]),
      method('GetVirtualHardDiskState', [
        { name: 'Path', type: 'string', in: true },
        { name: 'State', type: 'string', out: true, embeddedInstance: 'Msvm_VirtualHardDiskState' },
      ]),
      method('MergeVirtualHardDisk', [
        { name: 'SourcePath', type: 'string', in: true },
        { name: 'DestinationPath', type: 'string', in: true },
      ]),
      method('ResizeVirtualHardDisk', [
        { name: 'Path', type: 'string', in: true },
        { name: 'MaxInternalSize', type: 'uint64', in: true },
      ]),
      method('ConvertVirtualHardDisk', [
        { name: 'SourcePath', type: 'string', in: true },
        { name: 'VirtualDiskSettingData', type: 'string', in: true, embeddedInstance: 'Msvm_VirtualHardDiskSettingData' },
      ]),
      method('CompactVirtualHardDisk', [
        { name: 'Path', type: 'string', in: true },
        { name: 'Mode', type: 'uint16', in: true },
      ]),
    ],
  },
  {
    name: 'Msvm_VirtualHardDiskSettingData',
    superclass: 'CIM_SettingData',
    description: "A virtual hard disk file's settings (New-VHD's parameters, Get-VHD's answer).",
    properties: [
      { name: 'Type', type: 'uint16', valueMap: VirtualHardDiskTypeValues },
      { name: 'Format', type: 'uint16', valueMap: VirtualHardDiskFormatValues },
      { name: 'Path', type: 'string' },
      { name: 'ParentPath', type: 'string' },
      { name: 'ParentIdentifier', type: 'string' },
      { name: 'MaxInternalSize', type: 'uint64' },
      { name: 'BlockSize', type: 'uint32' },
      { name: 'LogicalSectorSize', type: 'uint32' },
      { name: 'PhysicalSectorSize', type: 'uint32' },
      { name: 'VirtualDiskId', type: 'string' },
    ],
  },
  {
    name: 'Msvm_VirtualHardDiskState',
    superclass: 'CIM_ManagedElement',
    description: "A virtual hard disk file's state (Get-VHD's FileSize, Attached, FragmentationPercentage, Alignment).",
    properties: [
      { name: 'FileSize', type: 'uint64' },
      { name: 'InUse', type: 'boolean' },
      { name: 'MinInternalSize', type: 'uint64' },
      { name: 'PhysicalSectorSize', type: 'uint32' },
      { name: 'Alignment', type: 'uint32' },
      { name: 'FragmentationPercentage', type: 'uint32' },
    ],
  },
];
