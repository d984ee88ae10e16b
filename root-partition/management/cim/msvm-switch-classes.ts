/**
 * The virtual switch classes of root\virtualization\v2
 * (MicrosoftDocs HyperV_v2 Msvm_VirtualEthernetSwitch, Msvm_VirtualEthernetSwitchSettingData,
 * Msvm_VirtualEthernetSwitchManagementService). New-VMSwitch calls the service's DefineSystem with
 * the switch's settings; an internal switch carries one Msvm_EthernetPortAllocationSettingData
 * whose HostResource names the host computer system (its host port).
 */
import type { CimClassDecl, CimParameterDecl } from './class-declaration.ts';
import { ManagementServiceReturnCodes } from './msvm-classes.ts';

const jobOut: CimParameterDecl = { name: 'Job', type: 'reference', referenceClass: 'CIM_ConcreteJob', out: true };

export const MsvmSwitchClasses: readonly CimClassDecl[] = [
  {
    name: 'Msvm_VirtualEthernetSwitch',
    superclass: 'CIM_ComputerSystem',
    description: 'A virtual Ethernet switch: Name is its GUID, ElementName the name NICs connect to.',
    properties: [
      { name: 'MaxVMQOffloads', type: 'uint32' },
      { name: 'MaxChimneyOffloads', type: 'uint32' },
      // tsvisor extensions: what the switch is doing now.
      { name: 'SwitchType', type: 'string', description: 'tsvisor: private or internal' },
      { name: 'LearnedAddresses', type: 'uint32', description: 'tsvisor: MAC addresses in the switch table' },
      { name: 'ConnectedPorts', type: 'uint32', description: 'tsvisor: ports connected now' },
    ],
  },
  {
    name: 'Msvm_VirtualEthernetSwitchSettingData',
    superclass: 'CIM_VirtualSystemSettingData',
    properties: [
      { name: 'VirtualSystemIdentifier', type: 'string' },
      { name: 'IOVPreferred', type: 'boolean' },
      // tsvisor extensions: the host's stack on an internal switch (passt).
      { name: 'HostStack', type: 'string', description: "tsvisor: 'passt' when passt is the host's side of this internal switch, else empty" },
      { name: 'HostStackGuestAddress', type: 'string', description: 'tsvisor: the address passt hands the guest, a.b.c.d/prefix (default 10.0.2.15/24)' },
      { name: 'HostStackGateway', type: 'string', description: "tsvisor: passt's own address, the guest's gateway (default 10.0.2.2)" },
      {
        name: 'PortForwards',
        type: 'string',
        isArray: true,
        description: 'tsvisor: host ports passt forwards to the guest address, udp|tcp:HOSTPORT:GUESTPORT',
      },
    ],
  },
  {
    name: 'Msvm_VirtualEthernetSwitchManagementService',
    superclass: 'CIM_VirtualSystemManagementService',
    properties: [],
    methods: [
      {
        name: 'DefineSystem',
        returnType: 'uint32',
        returnCodes: ManagementServiceReturnCodes,
        parameters: [
          { name: 'SystemSettings', type: 'string', in: true, embeddedInstance: 'CIM_VirtualSystemSettingData' },
          { name: 'ResourceSettings', type: 'string', isArray: true, in: true, embeddedInstance: 'CIM_ResourceAllocationSettingData' },
          { name: 'ReferenceConfiguration', type: 'reference', referenceClass: 'CIM_VirtualSystemSettingData', in: true },
          { name: 'ResultingSystem', type: 'reference', referenceClass: 'CIM_ComputerSystem', out: true },
          jobOut,
        ],
      },
      {
        name: 'DestroySystem',
        returnType: 'uint32',
        returnCodes: ManagementServiceReturnCodes,
        parameters: [{ name: 'AffectedSystem', type: 'reference', referenceClass: 'CIM_ComputerSystem', in: true }, jobOut],
      },
    ],
  },
];
