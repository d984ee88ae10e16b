/**
 * Captured wbemcli and pywbem exchanges as data: wbemcli's request prelude, the abbreviations
 * {NS} {NSP} {K} {V} {S}, and an object set holding exactly the instances the accepted replies show.
 */
import { CimInstance } from '../../root-partition/management/cim/instance.ts';
import { MemoryProvider } from '../../root-partition/management/cim/memory-provider.ts';
import { CimObjectManager } from '../../root-partition/management/cim/object-manager.ts';
import { createVirtualizationSchema } from '../../root-partition/management/cim/schema.ts';
import type { CimXmlHeaders } from '../../root-partition/management/cimxml/request-handler.ts';
import { JOB_ID, SERVICE_PATH, VM_NAME, VM_PATH, VSSD_ID, VSSD_PATH } from './fixtures.ts';

export const NS =
  '<LOCALNAMESPACEPATH><NAMESPACE NAME="root"></NAMESPACE><NAMESPACE NAME="virtualization"></NAMESPACE><NAMESPACE NAME="v2"></NAMESPACE></LOCALNAMESPACEPATH>';
export const NSP = `<NAMESPACEPATH><HOST>127.0.0.1</HOST>${NS}</NAMESPACEPATH>`;
export const K = `<INSTANCENAME CLASSNAME="Msvm_ComputerSystem"><KEYBINDING NAME="CreationClassName"><KEYVALUE VALUETYPE="string">Msvm_ComputerSystem</KEYVALUE></KEYBINDING><KEYBINDING NAME="Name"><KEYVALUE VALUETYPE="string">${VM_NAME}</KEYVALUE></KEYBINDING></INSTANCENAME>`;
export const V = `<INSTANCENAME CLASSNAME="Msvm_VirtualSystemSettingData"><KEYBINDING NAME="InstanceID"><KEYVALUE VALUETYPE="string">${VSSD_ID}</KEYVALUE></KEYBINDING></INSTANCENAME>`;
export const S =
  '<INSTANCENAME CLASSNAME="Msvm_VirtualSystemManagementService"><KEYBINDING NAME="CreationClassName"><KEYVALUE VALUETYPE="string">Msvm_VirtualSystemManagementService</KEYVALUE></KEYBINDING><KEYBINDING NAME="Name"><KEYVALUE VALUETYPE="string">vmms</KEYVALUE></KEYBINDING><KEYBINDING NAME="SystemCreationClassName"><KEYVALUE VALUETYPE="string">Msvm_ComputerSystem</KEYVALUE></KEYBINDING><KEYBINDING NAME="SystemName"><KEYVALUE VALUETYPE="string">HOST1</KEYVALUE></KEYBINDING></INSTANCENAME>';

/** wbemcli's request body around one call element (as sblim wbemcli 1.6.3 sends it). */
export function wbemcliBody(call: string): string {
  return `<?xml version="1.0" encoding="utf-8" ?>\n<CIM CIMVERSION="2.0" DTDVERSION="2.0">\n<MESSAGE ID="4711" PROTOCOLVERSION="1.0"><SIMPLEREQ>${call}</SIMPLEREQ>\n</MESSAGE></CIM>`;
}

/** pywbem's request body (pywbem _cim_operations.py). */
export function pywbemBody(call: string): string {
  return `<?xml version="1.0" encoding="utf-8" ?>\n<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1001" PROTOCOLVERSION="1.0"><SIMPLEREQ>${call}</SIMPLEREQ></MESSAGE></CIM>`;
}

export function wbemcliHeaders(method: string, object = 'root%2Fvirtualization%2Fv2'): CimXmlHeaders {
  return { cimOperation: 'MethodCall', cimMethod: method, cimObject: object, cimProtocolVersion: '1.0', contentType: 'application/xml; charset="utf-8"' };
}

/** The full accepted response document around a SIMPLERSP body. */
export function responseDocument(inner: string, id = '4711'): string {
  return `<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="${id}" PROTOCOLVERSION="1.0"><SIMPLERSP>${inner}</SIMPLERSP></MESSAGE></CIM>`;
}

/** The captured replies are written with line breaks between elements; they carry no content. */
export function withoutLineBreaks(xml: string): string {
  return xml.replace(/>\s*\n\s*</g, '><');
}

/** The objects behind the accepted replies: the VM as the ei reply shows it, its VSSD, the service. */
export function createReferenceManager(): CimObjectManager {
  const schema = createVirtualizationSchema();
  const provider = new MemoryProvider(schema);
  provider.add(
    new CimInstance('Msvm_ComputerSystem', [
      { name: 'CreationClassName', type: 'string', isArray: false, value: 'Msvm_ComputerSystem' },
      { name: 'Name', type: 'string', isArray: false, value: VM_NAME },
      { name: 'ElementName', type: 'string', isArray: false, value: 'web & db' },
      { name: 'EnabledState', type: 'uint16', isArray: false, value: 3 },
      { name: 'OperationalStatus', type: 'uint16', isArray: true, value: [2] },
      { name: 'InstallDate', type: 'datetime', isArray: false, value: null },
      { name: 'TimeOfLastStateChange', type: 'datetime', isArray: false, value: '20240101120000.000000+000' },
    ]),
  );
  provider.add(schema.createInstance('Msvm_VirtualSystemSettingData', { InstanceID: VSSD_ID, ElementName: 'web' }));
  provider.add(schema.createInstance('Msvm_VirtualSystemManagementService', Object.fromEntries(SERVICE_PATH.keys.map((k) => [k.name, k.value]))));
  provider.add(schema.createInstance('Msvm_SettingsDefineState', { ManagedElement: VM_PATH, SettingData: VSSD_PATH }));
  provider.onMethod('Msvm_ComputerSystem', 'RequestStateChange', () => ({
    returnValue: 4096,
    out: { Job: { className: 'Msvm_ConcreteJob', keys: [{ name: 'InstanceID', value: JOB_ID }] } },
  }));
  provider.onMethod('Msvm_VirtualSystemManagementService', 'DestroySystem', () => ({ returnValue: 0, out: {} }));
  provider.onMethod('Msvm_VirtualSystemManagementService', 'GetSummaryInformation', () => ({
    returnValue: 0,
    out: { SummaryInformation: [new CimInstance('Msvm_SummaryInformation', [{ name: 'Name', type: 'string', isArray: false, value: VM_NAME }])] },
  }));
  return new CimObjectManager(schema, provider);
}
