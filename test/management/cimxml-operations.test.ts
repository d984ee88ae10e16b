import { describe, expect, it } from 'vitest';
import { encodeClass } from '../../root-partition/management/cimxml/class-encoder.ts';
import { encodeIMethodResponse } from '../../root-partition/management/cimxml/message.ts';
import { handleCimXml } from '../../root-partition/management/cimxml/request-handler.ts';
import type { CimClass } from '../../root-partition/management/cim/schema.ts';
import { JOB_ID, VM_NAME } from './fixtures.ts';
import { createReferenceManager, K, NS, NSP, pywbemBody, responseDocument, S, V, wbemcliBody, wbemcliHeaders, withoutLineBreaks } from './cimxml-reference.ts';

/** Send a body as wbemcli would and return the response body. */
async function call(method: string, body: string, object?: string): Promise<string> {
  const r = await handleCimXml(createReferenceManager(), wbemcliHeaders(method, object), body, '127.0.0.1');
  expect(r.status).toBe(200);
  expect(r.headers).toEqual({ 'Content-Type': 'application/xml; charset="utf-8"', CIMOperation: 'MethodResponse' });
  return r.body;
}

const accepted = (inner: string, id?: string) => withoutLineBreaks(responseDocument(inner, id));
const VM_INSTANCE = `<INSTANCE CLASSNAME="Msvm_ComputerSystem">
<PROPERTY NAME="CreationClassName" TYPE="string"><VALUE>Msvm_ComputerSystem</VALUE></PROPERTY>
<PROPERTY NAME="Name" TYPE="string"><VALUE>${VM_NAME}</VALUE></PROPERTY>
<PROPERTY NAME="ElementName" TYPE="string"><VALUE>web &amp; db</VALUE></PROPERTY>
<PROPERTY NAME="EnabledState" TYPE="uint16"><VALUE>3</VALUE></PROPERTY>
<PROPERTY.ARRAY NAME="OperationalStatus" TYPE="uint16"><VALUE.ARRAY><VALUE>2</VALUE></VALUE.ARRAY></PROPERTY.ARRAY>
<PROPERTY NAME="InstallDate" TYPE="datetime"></PROPERTY>
<PROPERTY NAME="TimeOfLastStateChange" TYPE="datetime"><VALUE>20240101120000.000000+000</VALUE></PROPERTY>
</INSTANCE>`;
const SDS_NAME = `<INSTANCENAME CLASSNAME="Msvm_SettingsDefineState">
<KEYBINDING NAME="ManagedElement"><VALUE.REFERENCE><INSTANCEPATH>${NSP}${K}</INSTANCEPATH></VALUE.REFERENCE></KEYBINDING>
<KEYBINDING NAME="SettingData"><VALUE.REFERENCE><INSTANCEPATH>${NSP}${V}</INSTANCEPATH></VALUE.REFERENCE></KEYBINDING>
</INSTANCENAME>`;

describe('intrinsic operations answer exactly the replies wbemcli and pywbem accept', () => {
  it('ei — EnumerateInstances', async () => {
    const body = wbemcliBody(`<IMETHODCALL NAME="EnumerateInstances">${NS}
<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Msvm_ComputerSystem"/></IPARAMVALUE>
<IPARAMVALUE NAME="DeepInheritance"><VALUE>TRUE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="LocalOnly"><VALUE>FALSE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="IncludeQualifiers"><VALUE>FALSE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="IncludeClassOrigin"><VALUE>TRUE</VALUE></IPARAMVALUE>
</IMETHODCALL>`);
    expect(await call('EnumerateInstances', body)).toBe(
      accepted(`<IMETHODRESPONSE NAME="EnumerateInstances"><IRETURNVALUE><VALUE.NAMEDINSTANCE>
<INSTANCENAME CLASSNAME="Msvm_ComputerSystem">
<KEYBINDING NAME="CreationClassName"><KEYVALUE VALUETYPE="string">Msvm_ComputerSystem</KEYVALUE></KEYBINDING>
<KEYBINDING NAME="Name"><KEYVALUE VALUETYPE="string">${VM_NAME}</KEYVALUE></KEYBINDING>
</INSTANCENAME>
${VM_INSTANCE}
</VALUE.NAMEDINSTANCE></IRETURNVALUE></IMETHODRESPONSE>`),
    );
  });

  it('ein — EnumerateInstanceNames', async () => {
    const body = wbemcliBody(`<IMETHODCALL NAME="EnumerateInstanceNames">${NS}
<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Msvm_ComputerSystem"/></IPARAMVALUE>
</IMETHODCALL>`);
    expect(await call('EnumerateInstanceNames', body)).toBe(
      accepted(`<IMETHODRESPONSE NAME="EnumerateInstanceNames"><IRETURNVALUE>${K}</IRETURNVALUE></IMETHODRESPONSE>`),
    );
  });

  it('gi — GetInstance', async () => {
    const body = wbemcliBody(`<IMETHODCALL NAME="GetInstance">${NS}
<IPARAMVALUE NAME="LocalOnly"><VALUE>FALSE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="IncludeQualifiers"><VALUE>FALSE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="IncludeClassOrigin"><VALUE>TRUE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="InstanceName">${K}</IPARAMVALUE>
</IMETHODCALL>`);
    expect(await call('GetInstance', body)).toBe(accepted(`<IMETHODRESPONSE NAME="GetInstance"><IRETURNVALUE>${VM_INSTANCE}</IRETURNVALUE></IMETHODRESPONSE>`));
  });

  it('ai — Associators with all filters and a property list', async () => {
    const body = wbemcliBody(`<IMETHODCALL NAME="Associators">${NS}
<IPARAMVALUE NAME="ObjectName">${K}</IPARAMVALUE>
<IPARAMVALUE NAME="AssocClass"><CLASSNAME NAME="Msvm_SettingsDefineState"/></IPARAMVALUE>
<IPARAMVALUE NAME="ResultClass"><CLASSNAME NAME="Msvm_VirtualSystemSettingData"/></IPARAMVALUE>
<IPARAMVALUE NAME="Role"><VALUE>ManagedElement</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="ResultRole"><VALUE>SettingData</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="IncludeQualifiers"><VALUE>FALSE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="IncludeClassOrigin"><VALUE>TRUE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="PropertyList"><VALUE.ARRAY><VALUE>InstanceID</VALUE><VALUE>ElementName</VALUE></VALUE.ARRAY></IPARAMVALUE>
</IMETHODCALL>`);
    expect(await call('Associators', body)).toBe(
      accepted(`<IMETHODRESPONSE NAME="Associators"><IRETURNVALUE><VALUE.OBJECTWITHPATH>
<INSTANCEPATH>${NSP}${V}</INSTANCEPATH>
<INSTANCE CLASSNAME="Msvm_VirtualSystemSettingData">
<PROPERTY NAME="InstanceID" TYPE="string"><VALUE>Microsoft:${VM_NAME}</VALUE></PROPERTY>
<PROPERTY NAME="ElementName" TYPE="string"><VALUE>web</VALUE></PROPERTY>
</INSTANCE>
</VALUE.OBJECTWITHPATH></IRETURNVALUE></IMETHODRESPONSE>`),
    );
  });

  it('ain — AssociatorNames', async () => {
    const body = wbemcliBody(`<IMETHODCALL NAME="AssociatorNames">${NS}
<IPARAMVALUE NAME="ObjectName">${K}</IPARAMVALUE>
</IMETHODCALL>`);
    expect(await call('AssociatorNames', body)).toBe(
      accepted(
        `<IMETHODRESPONSE NAME="AssociatorNames"><IRETURNVALUE><OBJECTPATH><INSTANCEPATH>${NSP}${V}</INSTANCEPATH></OBJECTPATH></IRETURNVALUE></IMETHODRESPONSE>`,
      ),
    );
  });

  it('ri — References', async () => {
    const body = wbemcliBody(`<IMETHODCALL NAME="References">${NS}
<IPARAMVALUE NAME="ObjectName">${K}</IPARAMVALUE>
<IPARAMVALUE NAME="ResultClass"><CLASSNAME NAME="Msvm_SettingsDefineState"/></IPARAMVALUE>
<IPARAMVALUE NAME="Role"><VALUE>ManagedElement</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="IncludeQualifiers"><VALUE>FALSE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="IncludeClassOrigin"><VALUE>TRUE</VALUE></IPARAMVALUE>
</IMETHODCALL>`);
    expect(await call('References', body)).toBe(
      accepted(`<IMETHODRESPONSE NAME="References"><IRETURNVALUE><VALUE.OBJECTWITHPATH>
<INSTANCEPATH>${NSP}${SDS_NAME}</INSTANCEPATH>
<INSTANCE CLASSNAME="Msvm_SettingsDefineState">
<PROPERTY.REFERENCE NAME="ManagedElement" REFERENCECLASS="CIM_ManagedElement"><VALUE.REFERENCE><INSTANCEPATH>${NSP}${K}</INSTANCEPATH></VALUE.REFERENCE></PROPERTY.REFERENCE>
<PROPERTY.REFERENCE NAME="SettingData" REFERENCECLASS="CIM_SettingData"><VALUE.REFERENCE><INSTANCEPATH>${NSP}${V}</INSTANCEPATH></VALUE.REFERENCE></PROPERTY.REFERENCE>
</INSTANCE>
</VALUE.OBJECTWITHPATH></IRETURNVALUE></IMETHODRESPONSE>`),
    );
  });

  it('rin — ReferenceNames', async () => {
    const body = wbemcliBody(`<IMETHODCALL NAME="ReferenceNames">${NS}
<IPARAMVALUE NAME="ObjectName">${K}</IPARAMVALUE>
</IMETHODCALL>`);
    expect(await call('ReferenceNames', body)).toBe(
      accepted(
        `<IMETHODRESPONSE NAME="ReferenceNames"><IRETURNVALUE><OBJECTPATH><INSTANCEPATH>${NSP}${SDS_NAME}</INSTANCEPATH></OBJECTPATH></IRETURNVALUE></IMETHODRESPONSE>`,
      ),
    );
  });

  it('ExecQuery — pywbem WQL, message ID 1001 echoed', async () => {
    // The captured reply shows only Name and EnabledState; a projection gives that shape here.
    const body = pywbemBody(
      `<IMETHODCALL NAME="ExecQuery"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virtualization"/><NAMESPACE NAME="v2"/></LOCALNAMESPACEPATH><IPARAMVALUE NAME="QueryLanguage"><VALUE>WQL</VALUE></IPARAMVALUE><IPARAMVALUE NAME="Query"><VALUE>SELECT Name, EnabledState FROM Msvm_ComputerSystem WHERE ElementName = 'web &amp; db'</VALUE></IPARAMVALUE></IMETHODCALL>`,
    );
    const r = await handleCimXml(
      createReferenceManager(),
      { cimOperation: 'MethodCall', cimMethod: 'ExecQuery', cimObject: 'root/virtualization/v2', contentType: 'application/xml; charset="utf-8"' },
      body,
      '127.0.0.1',
    );
    expect(r.body).toBe(
      accepted(
        `<IMETHODRESPONSE NAME="ExecQuery"><IRETURNVALUE><VALUE.OBJECTWITHPATH>
<INSTANCEPATH>${NSP}${K}</INSTANCEPATH>
<INSTANCE CLASSNAME="Msvm_ComputerSystem">
<PROPERTY NAME="Name" TYPE="string"><VALUE>${VM_NAME}</VALUE></PROPERTY>
<PROPERTY NAME="EnabledState" TYPE="uint16"><VALUE>3</VALUE></PROPERTY>
</INSTANCE>
</VALUE.OBJECTWITHPATH></IRETURNVALUE></IMETHODRESPONSE>`,
        '1001',
      ),
    );
  });

  it('gc — the CLASS element of the accepted reply, from class data', () => {
    const origin = (classOrigin: string) => ({ classOrigin, local: false });
    const cls: CimClass = {
      name: 'Msvm_ComputerSystem',
      superclass: 'CIM_ComputerSystem',
      association: false,
      abstract: false,
      properties: [
        { name: 'CreationClassName', type: 'string', key: true, ...origin('CIM_System') },
        { name: 'Name', type: 'string', key: true, ...origin('CIM_ManagedSystemElement') },
        { name: 'EnabledState', type: 'uint16', ...origin('CIM_EnabledLogicalElement') },
        { name: 'OperationalStatus', type: 'uint16', isArray: true, ...origin('CIM_ManagedSystemElement') },
      ],
      methods: [
        {
          name: 'RequestStateChange',
          returnType: 'uint32',
          returnCodes: {},
          ...origin('CIM_EnabledLogicalElement'),
          parameters: [
            { name: 'RequestedState', type: 'uint16', in: true },
            { name: 'Job', type: 'reference', referenceClass: 'CIM_ConcreteJob', out: true },
            { name: 'TimeoutPeriod', type: 'datetime' },
          ],
        },
      ],
      keys: [],
    };
    const xml = encodeIMethodResponse(
      'GetClass',
      encodeClass(cls, { localOnly: false, includeQualifiers: true, includeClassOrigin: true, propertyList: null }),
    );
    expect(xml).toBe(
      withoutLineBreaks(`<IMETHODRESPONSE NAME="GetClass">
<IRETURNVALUE>
<CLASS NAME="Msvm_ComputerSystem" SUPERCLASS="CIM_ComputerSystem">
<PROPERTY NAME="CreationClassName" TYPE="string" CLASSORIGIN="CIM_System" PROPAGATED="true">
<QUALIFIER NAME="Key" TYPE="boolean" OVERRIDABLE="false"><VALUE>TRUE</VALUE></QUALIFIER>
</PROPERTY>
<PROPERTY NAME="Name" TYPE="string" CLASSORIGIN="CIM_ManagedSystemElement" PROPAGATED="true">
<QUALIFIER NAME="Key" TYPE="boolean" OVERRIDABLE="false"><VALUE>TRUE</VALUE></QUALIFIER>
</PROPERTY>
<PROPERTY NAME="EnabledState" TYPE="uint16" CLASSORIGIN="CIM_EnabledLogicalElement" PROPAGATED="true"></PROPERTY>
<PROPERTY.ARRAY NAME="OperationalStatus" TYPE="uint16" CLASSORIGIN="CIM_ManagedSystemElement" PROPAGATED="true"></PROPERTY.ARRAY>
<METHOD NAME="RequestStateChange" TYPE="uint32" CLASSORIGIN="CIM_EnabledLogicalElement" PROPAGATED="true">
<PARAMETER NAME="RequestedState" TYPE="uint16">
<QUALIFIER NAME="In" TYPE="boolean"><VALUE>TRUE</VALUE></QUALIFIER>
</PARAMETER>
<PARAMETER.REFERENCE NAME="Job" REFERENCECLASS="CIM_ConcreteJob">
<QUALIFIER NAME="Out" TYPE="boolean"><VALUE>TRUE</VALUE></QUALIFIER>
</PARAMETER.REFERENCE>
<PARAMETER NAME="TimeoutPeriod" TYPE="datetime"></PARAMETER>
</METHOD>
</CLASS>
</IRETURNVALUE>
</IMETHODRESPONSE>`),
    );
  });

  it('gc — the served Msvm_ComputerSystem carries keys, inherited methods and all parameters', async () => {
    const body = wbemcliBody(`<IMETHODCALL NAME="GetClass">
<LOCALNAMESPACEPATH>
<NAMESPACE NAME="root"/>
<NAMESPACE NAME="virtualization"/>
<NAMESPACE NAME="v2"/>
</LOCALNAMESPACEPATH>
<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Msvm_ComputerSystem"/></IPARAMVALUE>
<IPARAMVALUE NAME="LocalOnly"><VALUE>FALSE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="IncludeQualifiers"><VALUE>TRUE</VALUE></IPARAMVALUE>
<IPARAMVALUE NAME="IncludeClassOrigin"><VALUE>TRUE</VALUE></IPARAMVALUE>
</IMETHODCALL>`);
    const xml = await call('GetClass', body);
    expect(xml).toContain('<CLASS NAME="Msvm_ComputerSystem" SUPERCLASS="CIM_ComputerSystem">');
    expect(xml).toContain(
      '<PROPERTY NAME="CreationClassName" TYPE="string" CLASSORIGIN="CIM_System" PROPAGATED="true"><QUALIFIER NAME="Key" TYPE="boolean" OVERRIDABLE="false"><VALUE>TRUE</VALUE></QUALIFIER></PROPERTY>',
    );
    expect(xml).toContain(
      '<PROPERTY NAME="Name" TYPE="string" CLASSORIGIN="CIM_ManagedSystemElement" PROPAGATED="true"><QUALIFIER NAME="Key" TYPE="boolean" OVERRIDABLE="false"><VALUE>TRUE</VALUE></QUALIFIER></PROPERTY>',
    );
    expect(xml).toContain('<METHOD NAME="RequestStateChange" TYPE="uint32" CLASSORIGIN="CIM_EnabledLogicalElement">');
    expect(xml).toContain(
      '<PARAMETER.REFERENCE NAME="Job" REFERENCECLASS="CIM_ConcreteJob"><QUALIFIER NAME="Out" TYPE="boolean"><VALUE>TRUE</VALUE></QUALIFIER></PARAMETER.REFERENCE>',
    );
    expect(xml).toContain('<QUALIFIER NAME="ValueMap" TYPE="string"><VALUE.ARRAY><VALUE>0</VALUE><VALUE>4096</VALUE>');
    expect(xml).not.toMatch(/<[A-Za-z.]+[^>]*\/>/);
    const local = await call(
      'GetClass',
      body.replace(
        '<VALUE>FALSE</VALUE></IPARAMVALUE>\n<IPARAMVALUE NAME="IncludeQualifiers">',
        '<VALUE>TRUE</VALUE></IPARAMVALUE>\n<IPARAMVALUE NAME="IncludeQualifiers">',
      ),
    );
    expect(local).not.toContain('NAME="CreationClassName"');
    expect(local).toContain('NAME="ProcessID"');
  });

  it('gp — GetProperty answers the bare VALUE, and nothing for NULL', async () => {
    const gp = (name: string) =>
      wbemcliBody(
        `<IMETHODCALL NAME="GetProperty">${NS}<IPARAMVALUE NAME="InstanceName">${K}</IPARAMVALUE><IPARAMVALUE NAME="PropertyName"><VALUE>${name}</VALUE></IPARAMVALUE></IMETHODCALL>`,
      );
    expect(await call('GetProperty', gp('EnabledState'))).toBe(
      accepted('<IMETHODRESPONSE NAME="GetProperty"><IRETURNVALUE><VALUE>3</VALUE></IRETURNVALUE></IMETHODRESPONSE>'),
    );
    expect(await call('GetProperty', gp('OperationalStatus'))).toBe(
      accepted('<IMETHODRESPONSE NAME="GetProperty"><IRETURNVALUE><VALUE.ARRAY><VALUE>2</VALUE></VALUE.ARRAY></IRETURNVALUE></IMETHODRESPONSE>'),
    );
    expect(await call('GetProperty', gp('InstallDate'))).toBe(accepted('<IMETHODRESPONSE NAME="GetProperty"><IRETURNVALUE></IRETURNVALUE></IMETHODRESPONSE>'));
    expect(await call('GetProperty', gp('Bogus'))).toBe(
      accepted(
        '<IMETHODRESPONSE NAME="GetProperty"><ERROR CODE="12" DESCRIPTION="CIM_ERR_NO_SUCH_PROPERTY: Msvm_ComputerSystem has no property Bogus"></ERROR></IMETHODRESPONSE>',
      ),
    );
  });

  it('ecn — EnumerateClassNames answers CLASSNAME elements with end tags', async () => {
    const xml = await call(
      'EnumerateClassNames',
      wbemcliBody(`<IMETHODCALL NAME="EnumerateClassNames">${NS}
<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="CIM_ComputerSystem"/></IPARAMVALUE>
<IPARAMVALUE NAME="DeepInheritance"><VALUE>TRUE</VALUE></IPARAMVALUE>
</IMETHODCALL>`),
    );
    expect(xml).toBe(
      accepted(
        '<IMETHODRESPONSE NAME="EnumerateClassNames"><IRETURNVALUE><CLASSNAME NAME="Msvm_ComputerSystem"></CLASSNAME><CLASSNAME NAME="Msvm_VirtualEthernetSwitch"></CLASSNAME></IRETURNVALUE></IMETHODRESPONSE>',
      ),
    );
  });
});

describe('METHODCALL answers exactly the replies wbemcli and pywbem accept', () => {
  const VM_OBJECT = `root%2Fvirtualization%2Fv2%3AMsvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${VM_NAME}"`;
  const SVC_OBJECT =
    'root%2Fvirtualization%2Fv2%3AMsvm_VirtualSystemManagementService.CreationClassName="Msvm_VirtualSystemManagementService",Name="vmms",SystemCreationClassName="Msvm_ComputerSystem",SystemName="HOST1"';
  const SHORT_NS = '<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virtualization"/><NAMESPACE NAME="v2"/></LOCALNAMESPACEPATH>';

  it('cm RequestStateChange → 4096 and a Job reference', async () => {
    const body = wbemcliBody(
      `<METHODCALL NAME="RequestStateChange"><LOCALINSTANCEPATH>${SHORT_NS}${K}</LOCALINSTANCEPATH><PARAMVALUE NAME="RequestedState"><VALUE>2</VALUE></PARAMVALUE></METHODCALL>`,
    );
    expect(await call('RequestStateChange', body, VM_OBJECT)).toBe(
      accepted(`<METHODRESPONSE NAME="RequestStateChange">
<RETURNVALUE PARAMTYPE="uint32"><VALUE>4096</VALUE></RETURNVALUE>
<PARAMVALUE NAME="Job" PARAMTYPE="reference">
<VALUE.REFERENCE>
<INSTANCEPATH>
${NSP}
<INSTANCENAME CLASSNAME="Msvm_ConcreteJob"><KEYBINDING NAME="InstanceID"><KEYVALUE VALUETYPE="string">${JOB_ID}</KEYVALUE></KEYBINDING></INSTANCENAME>
</INSTANCEPATH>
</VALUE.REFERENCE>
</PARAMVALUE>
</METHODRESPONSE>`),
    );
  });

  it('cm DestroySystem with a REF parameter', async () => {
    const body = wbemcliBody(
      `<METHODCALL NAME="DestroySystem"><LOCALINSTANCEPATH>${SHORT_NS}${S}</LOCALINSTANCEPATH><PARAMVALUE NAME="AffectedSystem"><VALUE.REFERENCE><INSTANCEPATH><NAMESPACEPATH><HOST>127.0.0.1</HOST>${NS}</NAMESPACEPATH>${K}</INSTANCEPATH></VALUE.REFERENCE></PARAMVALUE></METHODCALL>`,
    );
    expect(await call('DestroySystem', body, SVC_OBJECT)).toBe(
      accepted('<METHODRESPONSE NAME="DestroySystem"><RETURNVALUE PARAMTYPE="uint32"><VALUE>0</VALUE></RETURNVALUE></METHODRESPONSE>'),
    );
  });

  it('cm GetSummaryInformation with a REF array and uint32 array in, embedded instances out', async () => {
    const ref = (id: string) =>
      `<VALUE.REFERENCE><INSTANCEPATH>${NSP}<INSTANCENAME CLASSNAME="Msvm_VirtualSystemSettingData"><KEYBINDING NAME="InstanceID"><KEYVALUE VALUETYPE="string">${id}</KEYVALUE></KEYBINDING></INSTANCENAME></INSTANCEPATH></VALUE.REFERENCE>`;
    const body = wbemcliBody(
      `<METHODCALL NAME="GetSummaryInformation"><LOCALINSTANCEPATH>${SHORT_NS}${S}</LOCALINSTANCEPATH><PARAMVALUE NAME="SettingData"><VALUE.REFARRAY>${ref('Microsoft:A')}${ref('Microsoft:B')}</VALUE.REFARRAY></PARAMVALUE><PARAMVALUE NAME="RequestedInformation"><VALUE.ARRAY><VALUE>0</VALUE><VALUE>1</VALUE></VALUE.ARRAY></PARAMVALUE></METHODCALL>`,
    );
    expect(await call('GetSummaryInformation', body, SVC_OBJECT)).toBe(
      accepted(
        `<METHODRESPONSE NAME="GetSummaryInformation"><RETURNVALUE PARAMTYPE="uint32"><VALUE>0</VALUE></RETURNVALUE><PARAMVALUE NAME="SummaryInformation" PARAMTYPE="string" EmbeddedObject="instance"><VALUE.ARRAY><VALUE>&lt;INSTANCE CLASSNAME=&quot;Msvm_SummaryInformation&quot;&gt;&lt;PROPERTY NAME=&quot;Name&quot; TYPE=&quot;string&quot;&gt;&lt;VALUE&gt;${VM_NAME}&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;</VALUE></VALUE.ARRAY></PARAMVALUE></METHODRESPONSE>`,
      ),
    );
  });

  it('echoes the method name as the request spelled it', async () => {
    const body = wbemcliBody(
      `<METHODCALL NAME="requeststatechange"><LOCALINSTANCEPATH>${SHORT_NS}${K}</LOCALINSTANCEPATH><PARAMVALUE NAME="requestedstate"><VALUE>2</VALUE></PARAMVALUE></METHODCALL>`,
    );
    expect(await call('requeststatechange', body, VM_OBJECT)).toContain(
      '<METHODRESPONSE NAME="requeststatechange"><RETURNVALUE PARAMTYPE="uint32"><VALUE>4096</VALUE>',
    );
  });
});
