/**
 * Association classes (DSP0004 "Associations": a class whose reference properties are the roles)
 * of Hyper-V's v2 model (Microsoft Docs). The CIM parents carry the roles; the Msvm classes refine nothing
 * but the name, as in Hyper-V's v2 MOF.
 */
import type { CimClassDecl } from './class-declaration.ts';

function roles(a: string, aClass: string, b: string, bClass: string) {
  return [
    { name: a, type: 'reference' as const, referenceClass: aClass, key: true },
    { name: b, type: 'reference' as const, referenceClass: bClass, key: true },
  ];
}

export const MsvmAssociations: readonly CimClassDecl[] = [
  {
    name: 'CIM_Component',
    association: true,
    abstract: true,
    properties: roles('GroupComponent', 'CIM_ManagedElement', 'PartComponent', 'CIM_ManagedElement'),
  },
  {
    name: 'CIM_SystemComponent',
    superclass: 'CIM_Component',
    association: true,
    abstract: true,
    properties: roles('GroupComponent', 'CIM_System', 'PartComponent', 'CIM_ManagedSystemElement'),
  },
  {
    name: 'CIM_SystemDevice',
    superclass: 'CIM_SystemComponent',
    association: true,
    abstract: true,
    properties: roles('GroupComponent', 'CIM_System', 'PartComponent', 'CIM_LogicalDevice'),
  },
  { name: 'Msvm_SystemDevice', superclass: 'CIM_SystemDevice', association: true, properties: [] },
  {
    name: 'CIM_VirtualSystemSettingDataComponent',
    superclass: 'CIM_Component',
    association: true,
    abstract: true,
    properties: roles('GroupComponent', 'CIM_VirtualSystemSettingData', 'PartComponent', 'CIM_ManagedElement'),
  },
  { name: 'Msvm_VirtualSystemSettingDataComponent', superclass: 'CIM_VirtualSystemSettingDataComponent', association: true, properties: [] },
  {
    name: 'CIM_ElementSettingData',
    association: true,
    abstract: true,
    properties: [
      ...roles('ManagedElement', 'CIM_ManagedElement', 'SettingData', 'CIM_SettingData'),
      { name: 'IsDefault', type: 'uint16' },
      { name: 'IsCurrent', type: 'uint16' },
    ],
  },
  { name: 'Msvm_ElementSettingData', superclass: 'CIM_ElementSettingData', association: true, properties: [] },
  // As wbemcli ri shows them: REFERENCECLASS CIM_ManagedElement and CIM_SettingData.
  {
    name: 'CIM_SettingsDefineState',
    association: true,
    abstract: true,
    properties: roles('ManagedElement', 'CIM_ManagedElement', 'SettingData', 'CIM_SettingData'),
  },
  { name: 'Msvm_SettingsDefineState', superclass: 'CIM_SettingsDefineState', association: true, properties: [] },
  {
    name: 'CIM_SnapshotOfVirtualSystem',
    association: true,
    abstract: true,
    properties: roles('ManagedElement', 'CIM_ManagedElement', 'SameElement', 'CIM_VirtualSystemSettingData'),
  },
  { name: 'Msvm_SnapshotOfVirtualSystem', superclass: 'CIM_SnapshotOfVirtualSystem', association: true, properties: [] },
  // The snapshot tree: each snapshot VSSD and its parent's; the VM and the snapshot it runs on from.
  {
    name: 'Msvm_ParentChildSettingData',
    association: true,
    properties: roles('Parent', 'CIM_VirtualSystemSettingData', 'Child', 'CIM_VirtualSystemSettingData'),
  },
  {
    name: 'Msvm_MostCurrentSnapshotInBranch',
    association: true,
    properties: roles('Antecedent', 'CIM_ComputerSystem', 'Dependent', 'CIM_VirtualSystemSettingData'),
  },
  {
    name: 'CIM_AffectedJobElement',
    association: true,
    abstract: true,
    properties: [...roles('AffectedElement', 'CIM_ManagedElement', 'AffectingElement', 'CIM_Job'), { name: 'ElementEffects', type: 'uint16', isArray: true }],
  },
  { name: 'Msvm_AffectedJobElement', superclass: 'CIM_AffectedJobElement', association: true, properties: [] },
];
