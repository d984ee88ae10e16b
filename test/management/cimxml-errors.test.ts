import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CimInstance } from '../../root-partition/management/cim/instance.ts';
import { handleCimXml } from '../../root-partition/management/cimxml/request-handler.ts';
import { createFixture, VM_NAME } from './fixtures.ts';
import { K, NS, pywbemBody, responseDocument, S, wbemcliBody, wbemcliHeaders } from './cimxml-reference.ts';

const SHORT_NS = '<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virtualization"/><NAMESPACE NAME="v2"/></LOCALNAMESPACEPATH>';
const enumerate = (cls: string, extra = '') =>
  wbemcliBody(`<IMETHODCALL NAME="EnumerateInstances">${NS}<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="${cls}"/></IPARAMVALUE>${extra}</IMETHODCALL>`);

async function send(body: string, headers = wbemcliHeaders('EnumerateInstances')) {
  return handleCimXml(createFixture().manager, headers, body, '127.0.0.1');
}

/** The ERROR element of a 200 reply. */
async function cimError(method: string, body: string, object?: string): Promise<string> {
  const r = await send(body, wbemcliHeaders(method, object));
  expect(r.status).toBe(200);
  const m = /<ERROR CODE="(\d+)" DESCRIPTION="([^"]*)"><\/ERROR>/.exec(r.body);
  return m ? `${m[1]} ${m[2]}` : 'no error';
}

describe('HTTP-level rejections (DSP0200 "Errors and status codes")', () => {
  it.each([
    ['not well-formed XML', '<CIM><MESSAGE>', {}, 400, 'request-not-well-formed'],
    ['a DOCTYPE (entity expansion)', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><CIM></CIM>', {}, 400, 'request-not-well-formed'],
    ['a root that is not CIM', '<?xml version="1.0"?><FOO></FOO>', {}, 400, 'request-not-valid'],
    ['no SIMPLEREQ', '<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0"></MESSAGE></CIM>', {}, 400, 'request-not-valid'],
    ['IMETHODCALL without LOCALNAMESPACEPATH', wbemcliBody('<IMETHODCALL NAME="EnumerateInstances"></IMETHODCALL>'), {}, 400, 'request-not-valid'],
    [
      'MULTIREQ',
      '<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0"><MULTIREQ></MULTIREQ></MESSAGE></CIM>',
      {},
      501,
      'multiple-requests-unsupported',
    ],
    ['CIMVERSION 3.0', '<CIM CIMVERSION="3.0" DTDVERSION="2.0"></CIM>', {}, 501, 'unsupported-cim-version'],
    ['DTDVERSION 1.1', '<CIM CIMVERSION="2.0" DTDVERSION="1.1"></CIM>', {}, 501, 'unsupported-dtd-version'],
    [
      'PROTOCOLVERSION 2.0',
      '<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="2.0"></MESSAGE></CIM>',
      {},
      501,
      'unsupported-protocol-version',
    ],
    ['CIMMethod naming another method', enumerate('Msvm_ComputerSystem'), { cimMethod: 'GetInstance' }, 400, 'header-mismatch'],
    ['an empty CIMMethod', enumerate('Msvm_ComputerSystem'), { cimMethod: '' }, 400, 'header-mismatch'],
    ['CIMObject in another namespace', enumerate('Msvm_ComputerSystem'), { cimObject: 'root%2Fcimv2' }, 400, 'header-mismatch'],
    ['CIMOperation other than MethodCall', enumerate('Msvm_ComputerSystem'), { cimOperation: 'MethodResponse' }, 400, 'unsupported-operation'],
    ['a CIMBatch header', enumerate('Msvm_ComputerSystem'), { cimBatch: '' }, 501, 'multiple-requests-unsupported'],
    ['CIMProtocolVersion 2.0', enumerate('Msvm_ComputerSystem'), { cimProtocolVersion: '2.0' }, 501, 'unsupported-protocol-version'],
    ['Content-Type text/plain', enumerate('Msvm_ComputerSystem'), { contentType: 'text/plain' }, 400, 'request-not-valid'],
  ])('%s', async (_what, body, override, status, cimErrorHeader) => {
    const r = await send(body, { ...wbemcliHeaders('EnumerateInstances'), ...override });
    expect([r.status, r.headers.CIMError, r.body]).toEqual([status, cimErrorHeader, '']);
  });

  it('answers 400 without CIMError when CIMOperation is missing (not a CIM request)', async () => {
    const r = await send(enumerate('Msvm_ComputerSystem'), { contentType: 'application/xml' });
    expect([r.status, r.headers]).toEqual([400, {}]);
  });

  it('accepts a BOM, text/xml, unencoded CIMObject and case-insensitive CIMMethod', async () => {
    const r = await send(`\uFEFF${enumerate('Msvm_ComputerSystem')}`, {
      cimOperation: 'methodcall',
      cimMethod: 'enumerateinstances',
      cimObject: 'ROOT/virtualization/v2',
      contentType: 'text/xml',
    });
    expect(r.status).toBe(200);
    expect(r.body).toContain(VM_NAME);
  });
});

describe('CIM errors inside a 200 reply (DSP0200 "Status codes")', () => {
  it('reports a missing instance exactly, escaping the description', async () => {
    const body = wbemcliBody(
      `<IMETHODCALL NAME="GetInstance">${NS}<IPARAMVALUE NAME="InstanceName">${K.replace(VM_NAME, 'no"pe')}</IPARAMVALUE></IMETHODCALL>`,
    );
    const r = await send(body, wbemcliHeaders('GetInstance'));
    expect(r.body).toBe(
      responseDocument(
        '<IMETHODRESPONSE NAME="GetInstance"><ERROR CODE="6" DESCRIPTION="CIM_ERR_NOT_FOUND: no instance Msvm_ComputerSystem.CreationClassName=&quot;Msvm_ComputerSystem&quot;,Name=&quot;no\\&quot;pe&quot;"></ERROR></IMETHODRESPONSE>',
      ),
    );
  });

  it.each([
    [
      'an unknown namespace',
      'EnumerateInstances',
      enumerate('Msvm_ComputerSystem').replace('"v2"', '"v3"'),
      '3 CIM_ERR_INVALID_NAMESPACE: namespace root/virtualization/v3 is not served',
      'root%2Fvirtualization%2Fv3',
    ],
    ['an unknown class', 'EnumerateInstances', enumerate('Msvm_Nope'), '5 CIM_ERR_INVALID_CLASS: no class Msvm_Nope'],
    [
      'an unknown intrinsic method',
      'OpenEnumerateInstances',
      wbemcliBody(`<IMETHODCALL NAME="OpenEnumerateInstances">${NS}</IMETHODCALL>`),
      '7 CIM_ERR_NOT_SUPPORTED: intrinsic method OpenEnumerateInstances is not supported',
    ],
    [
      'CreateInstance (objects change only through methods)',
      'CreateInstance',
      wbemcliBody(`<IMETHODCALL NAME="CreateInstance">${NS}</IMETHODCALL>`),
      '7 CIM_ERR_NOT_SUPPORTED: intrinsic method CreateInstance is not supported',
    ],
    [
      'an unknown IPARAMVALUE',
      'EnumerateInstances',
      enumerate('Msvm_ComputerSystem', '<IPARAMVALUE NAME="Bogus"><VALUE>1</VALUE></IPARAMVALUE>'),
      '7 CIM_ERR_NOT_SUPPORTED: EnumerateInstances has no parameter Bogus',
    ],
    [
      'a duplicate IPARAMVALUE',
      'EnumerateInstances',
      enumerate('Msvm_ComputerSystem', '<IPARAMVALUE NAME="classname"><CLASSNAME NAME="X"/></IPARAMVALUE>'),
      '4 CIM_ERR_INVALID_PARAMETER: classname given twice',
    ],
    [
      'a missing ClassName',
      'EnumerateInstances',
      wbemcliBody(`<IMETHODCALL NAME="EnumerateInstances">${NS}</IMETHODCALL>`),
      '4 CIM_ERR_INVALID_PARAMETER: ClassName is required',
    ],
    [
      'a bad boolean',
      'EnumerateInstances',
      enumerate('Msvm_ComputerSystem', '<IPARAMVALUE NAME="DeepInheritance"><VALUE>maybe</VALUE></IPARAMVALUE>'),
      '4 CIM_ERR_INVALID_PARAMETER: DeepInheritance must be TRUE or FALSE',
    ],
    [
      'a wrong key set',
      'GetInstance',
      wbemcliBody(
        `<IMETHODCALL NAME="GetInstance">${NS}<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="Msvm_ComputerSystem"><KEYBINDING NAME="Name"><KEYVALUE>x</KEYVALUE></KEYBINDING></INSTANCENAME></IPARAMVALUE></IMETHODCALL>`,
      ),
      '4 CIM_ERR_INVALID_PARAMETER: Msvm_ComputerSystem has keys CreationClassName, Name',
    ],
    [
      'a query language other than WQL/CQL',
      'ExecQuery',
      wbemcliBody(
        `<IMETHODCALL NAME="ExecQuery">${NS}<IPARAMVALUE NAME="QueryLanguage"><VALUE>SQL</VALUE></IPARAMVALUE><IPARAMVALUE NAME="Query"><VALUE>x</VALUE></IPARAMVALUE></IMETHODCALL>`,
      ),
      '14 CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED: query language SQL is not supported',
    ],
    [
      'a WQL syntax error',
      'ExecQuery',
      wbemcliBody(
        `<IMETHODCALL NAME="ExecQuery">${NS}<IPARAMVALUE NAME="QueryLanguage"><VALUE>WQL</VALUE></IPARAMVALUE><IPARAMVALUE NAME="Query"><VALUE>SELECT * FROM</VALUE></IPARAMVALUE></IMETHODCALL>`,
      ),
      '15 CIM_ERR_INVALID_QUERY: WQL syntax error at position 13: expected class name, found end of query',
    ],
  ])('%s', async (_what, method, body, expected, object?: string) => {
    expect(await cimError(method, body, object)).toBe(expected);
  });

  const VM_OBJECT = `root%2Fvirtualization%2Fv2%3AMsvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${VM_NAME}"`;
  const method = (name: string, params: string, path = `<LOCALINSTANCEPATH>${SHORT_NS}${K}</LOCALINSTANCEPATH>`) =>
    wbemcliBody(`<METHODCALL NAME="${name}">${path}${params}</METHODCALL>`);

  it.each([
    ['an unknown method', 'Explode', method('Explode', ''), '17 CIM_ERR_METHOD_NOT_FOUND: Msvm_ComputerSystem has no method Explode'],
    [
      'an unknown parameter',
      'RequestStateChange',
      method('RequestStateChange', '<PARAMVALUE NAME="Bogus"><VALUE>1</VALUE></PARAMVALUE>'),
      '4 CIM_ERR_INVALID_PARAMETER: RequestStateChange has no parameter Bogus',
    ],
    [
      'an ill-typed parameter',
      'RequestStateChange',
      method('RequestStateChange', '<PARAMVALUE NAME="RequestedState"><VALUE>abc</VALUE></PARAMVALUE>'),
      '4 CIM_ERR_INVALID_PARAMETER: RequestedState: &quot;abc&quot; is not a uint16',
    ],
    [
      'an out-of-range parameter',
      'RequestStateChange',
      method('RequestStateChange', '<PARAMVALUE NAME="RequestedState"><VALUE>65536</VALUE></PARAMVALUE>'),
      '4 CIM_ERR_INVALID_PARAMETER: RequestedState: 65536 is out of range for uint16',
    ],
    [
      'a reference where a value is declared',
      'RequestStateChange',
      method('RequestStateChange', `<PARAMVALUE NAME="RequestedState"><VALUE.REFERENCE>${K}</VALUE.REFERENCE></PARAMVALUE>`),
      '4 CIM_ERR_INVALID_PARAMETER: RequestedState must be a uint16 value',
    ],
    [
      'a missing target instance',
      'RequestStateChange',
      method('RequestStateChange', '', `<LOCALINSTANCEPATH>${SHORT_NS}${K.replace(VM_NAME, 'gone')}</LOCALINSTANCEPATH>`),
      '6 CIM_ERR_NOT_FOUND: no instance Msvm_ComputerSystem.CreationClassName=&quot;Msvm_ComputerSystem&quot;,Name=&quot;gone&quot;',
    ],
    [
      'an instance method on a class path',
      'RequestStateChange',
      method('RequestStateChange', '', `<LOCALCLASSPATH>${SHORT_NS}<CLASSNAME NAME="Msvm_ComputerSystem"/></LOCALCLASSPATH>`),
      '4 CIM_ERR_INVALID_PARAMETER: Msvm_ComputerSystem.RequestStateChange needs an instance path',
    ],
    [
      'a method on an unknown class',
      'X',
      method('X', '', `<LOCALCLASSPATH>${SHORT_NS}<CLASSNAME NAME="Msvm_Nope"/></LOCALCLASSPATH>`),
      '5 CIM_ERR_INVALID_CLASS: no class Msvm_Nope',
    ],
    [
      'a declared method nobody implements',
      'AddResourceSettings',
      method('AddResourceSettings', '', `<LOCALINSTANCEPATH>${SHORT_NS}${S}</LOCALINSTANCEPATH>`),
      '16 CIM_ERR_METHOD_NOT_AVAILABLE: Msvm_VirtualSystemManagementService.AddResourceSettings is not implemented',
    ],
    [
      'malformed embedded instance text',
      'DefineSystem',
      method(
        'DefineSystem',
        '<PARAMVALUE NAME="SystemSettings"><VALUE>&lt;INSTANCE</VALUE></PARAMVALUE>',
        `<LOCALINSTANCEPATH>${SHORT_NS}${S}</LOCALINSTANCEPATH>`,
      ),
      '4 CIM_ERR_INVALID_PARAMETER: embedded instance is not well-formed XML',
    ],
    [
      'an embedded instance of an unknown class',
      'DefineSystem',
      method(
        'DefineSystem',
        '<PARAMVALUE NAME="SystemSettings"><VALUE>&lt;INSTANCE CLASSNAME="Nope"&gt;&lt;/INSTANCE&gt;</VALUE></PARAMVALUE>',
        `<LOCALINSTANCEPATH>${SHORT_NS}${S}</LOCALINSTANCEPATH>`,
      ),
      '4 CIM_ERR_INVALID_PARAMETER: embedded instance of unknown class Nope',
    ],
  ])('%s', async (_what, name, body, expected) => {
    expect(await cimError(name, body, VM_OBJECT)).toContain(expected);
  });
});

describe('embedded instance parameters in every form wbemcli and pywbem send', () => {
  const SVC_OBJECT =
    'root/virtualization/v2:Msvm_VirtualSystemManagementService.CreationClassName="Msvm_VirtualSystemManagementService",Name="vmms",SystemCreationClassName="Msvm_ComputerSystem",SystemName="HOST1"';
  const defineWith = async (paramValue: string, pywbem = false) => {
    const f = createFixture();
    const call = `<METHODCALL NAME="DefineSystem"><LOCALINSTANCEPATH>${SHORT_NS}${S}</LOCALINSTANCEPATH>${paramValue}</METHODCALL>`;
    const r = await handleCimXml(f.manager, { ...wbemcliHeaders('DefineSystem', SVC_OBJECT) }, pywbem ? pywbemBody(call) : wbemcliBody(call), '127.0.0.1');
    expect(r.body).toContain('<RETURNVALUE PARAMTYPE="uint32"><VALUE>0</VALUE></RETURNVALUE><PARAMVALUE NAME="ResultingSystem" PARAMTYPE="reference">');
    return f.calls.get('DefineSystem')!;
  };

  it('pywbem: escaped INSTANCE text with EmbeddedObject, double-escaped &, and a NULL reference', async () => {
    const params = await defineWith(
      '<PARAMVALUE NAME="SystemSettings" PARAMTYPE="string" EmbeddedObject="instance"><VALUE>&lt;INSTANCE CLASSNAME=&quot;Msvm_VirtualSystemSettingData&quot;&gt;&lt;PROPERTY NAME=&quot;ElementName&quot; TYPE=&quot;string&quot;&gt;&lt;VALUE&gt;a&amp;amp;b&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;</VALUE></PARAMVALUE><PARAMVALUE NAME="ReferenceConfiguration"/>',
      true,
    );
    const settings = params.SystemSettings as CimInstance;
    expect([settings.className, settings.get('ElementName'), params.ReferenceConfiguration]).toEqual(['Msvm_VirtualSystemSettingData', 'a&b', null]);
  });

  it('CDATA, an INSTANCE child of PARAMVALUE, and raw markup typed into VALUE', async () => {
    const inner =
      '<INSTANCE CLASSNAME="Msvm_VirtualSystemSettingData"><QUALIFIER NAME="Description" TYPE="string"><VALUE>copied by wbemcli ci</VALUE></QUALIFIER><PROPERTY NAME="ElementName" TYPE="string"><VALUE>vm1</VALUE></PROPERTY><PROPERTY NAME="AutomaticStartupAction"><VALUE>4</VALUE></PROPERTY></INSTANCE>';
    for (const form of [`<VALUE><![CDATA[${inner}]]></VALUE>`, inner, `<VALUE>${inner}</VALUE>`]) {
      const settings = (await defineWith(`<PARAMVALUE NAME="systemsettings">${form}</PARAMVALUE>`)).SystemSettings as CimInstance;
      expect([settings.get('ElementName'), settings.get('AutomaticStartupAction')]).toEqual(['vm1', 4]);
    }
  });

  it('an array of embedded RASDs', async () => {
    const rasd = (n: number) =>
      `&lt;INSTANCE CLASSNAME=&quot;Msvm_MemorySettingData&quot;&gt;&lt;PROPERTY NAME=&quot;VirtualQuantity&quot; TYPE=&quot;uint64&quot;&gt;&lt;VALUE&gt;${n}&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;`;
    const params = await defineWith(
      `<PARAMVALUE NAME="ResourceSettings" PARAMTYPE="string" EmbeddedObject="instance"><VALUE.ARRAY><VALUE>${rasd(512)}</VALUE><VALUE>${rasd(2048)}</VALUE></VALUE.ARRAY></PARAMVALUE>`,
    );
    expect((params.ResourceSettings as CimInstance[]).map((i) => i.get('VirtualQuantity'))).toEqual([512n, 2048n]);
  });
});

describe('hostile bodies never crash the handler', () => {
  it('answers every random or mutated body with 200, 400 or 501', async () => {
    const { manager } = createFixture();
    const seed = enumerate('Msvm_ComputerSystem');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.tuple(fc.nat(seed.length), fc.nat(seed.length), fc.string()).map(([a, b, s]) => seed.slice(0, Math.min(a, b)) + s + seed.slice(Math.max(a, b))),
        ),
        async (body) => {
          const r = await handleCimXml(manager, wbemcliHeaders('EnumerateInstances'), body, '127.0.0.1');
          expect([200, 400, 501]).toContain(r.status);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
