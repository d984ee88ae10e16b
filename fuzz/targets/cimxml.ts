/**
 * CIM-XML requests (root-partition/management/cimxml): the HTTP body a client sends, decoded
 * (XML, message, parameters) and run against the object manager of a small Hyper-V-like object
 * set, intrinsic operations and extrinsic method calls alike, then the response encoded. The
 * declared refusals are CimXmlProtocolError (an HTTP 400/501 with CIMError) and CimError (a
 * CIM error in the response). Anything else would reach the client as CIM_ERR_FAILED with an
 * internal message: a bug.
 */
import { CimError } from '../../root-partition/management/cim/errors.ts';
import { runIntrinsic } from '../../root-partition/management/cimxml/intrinsic-operations.ts';
import { CimXmlProtocolError, decodeRequest, encodeEnvelope, encodeIMethodResponse } from '../../root-partition/management/cimxml/message.ts';
import { runMethodCall } from '../../root-partition/management/cimxml/method-call.ts';
import { createFixture } from '../../test/management/fixtures.ts';
import { K, NS, NSP, S, V, wbemcliBody } from '../../test/management/cimxml-reference.ts';
import { utf8, fromUtf8, type FuzzTarget } from '../engine/target.ts';

const iparam = (name: string, inner: string) => `<IPARAMVALUE NAME="${name}">${inner}</IPARAMVALUE>`;
const imethod = (name: string, params: string) => wbemcliBody(`<IMETHODCALL NAME="${name}">${NS}${params}</IMETHODCALL>`);

export const CIMXML_SEEDS = [
  imethod(
    'EnumerateInstances',
    iparam('ClassName', '<CLASSNAME NAME="Msvm_ComputerSystem"/>') +
      iparam('DeepInheritance', '<VALUE>TRUE</VALUE>') +
      iparam('LocalOnly', '<VALUE>FALSE</VALUE>'),
  ),
  imethod('EnumerateInstanceNames', iparam('ClassName', '<CLASSNAME NAME="Msvm_VirtualSystemSettingData"/>')),
  imethod('GetInstance', iparam('InstanceName', K) + iparam('PropertyList', '<VALUE.ARRAY><VALUE>Name</VALUE><VALUE>EnabledState</VALUE></VALUE.ARRAY>')),
  imethod('GetClass', iparam('ClassName', '<CLASSNAME NAME="Msvm_ComputerSystem"/>') + iparam('IncludeQualifiers', '<VALUE>FALSE</VALUE>')),
  imethod(
    'ExecQuery',
    iparam('QueryLanguage', '<VALUE>WQL</VALUE>') +
      iparam('Query', "<VALUE>SELECT Name FROM Msvm_ComputerSystem WHERE EnabledState = 2 AND ElementName LIKE 'b%'</VALUE>"),
  ),
  imethod(
    'Associators',
    iparam('ObjectName', K) +
      iparam('AssocClass', '<CLASSNAME NAME="Msvm_SettingsDefineState"/>') +
      iparam('ResultClass', '<CLASSNAME NAME="Msvm_VirtualSystemSettingData"/>'),
  ),
  imethod('References', iparam('ObjectName', V)),
  imethod('ReferenceNames', iparam('ObjectName', K)),
  wbemcliBody(
    `<METHODCALL NAME="RequestStateChange"><LOCALINSTANCEPATH>${NS}${K}</LOCALINSTANCEPATH><PARAMVALUE NAME="RequestedState" PARAMTYPE="uint16"><VALUE>2</VALUE></PARAMVALUE></METHODCALL>`,
  ),
  wbemcliBody(
    `<METHODCALL NAME="DefineSystem"><LOCALINSTANCEPATH>${NS}${S}</LOCALINSTANCEPATH><PARAMVALUE NAME="SystemSettings" PARAMTYPE="string"><VALUE>&lt;INSTANCE CLASSNAME="Msvm_VirtualSystemSettingData"&gt;&lt;/INSTANCE&gt;</VALUE></PARAMVALUE><PARAMVALUE NAME="ReferenceConfiguration" PARAMTYPE="reference"><VALUE.REFERENCE><INSTANCEPATH>${NSP}${V}</INSTANCEPATH></VALUE.REFERENCE></PARAMVALUE></METHODCALL>`,
  ),
];

export function createTarget(): FuzzTarget {
  let fixture: ReturnType<typeof createFixture> | null = null;
  return {
    name: 'cimxml',
    description: 'CIM-XML request bodies: XML, message and parameter decoding, intrinsic and extrinsic operations',
    maxInputBytes: 16384,
    dictionary: [
      '<VALUE>',
      '</VALUE>',
      '<VALUE.ARRAY>',
      '<VALUE.REFERENCE>',
      '<INSTANCENAME CLASSNAME="',
      '<KEYBINDING NAME="',
      '<KEYVALUE VALUETYPE="',
      '<IPARAMVALUE NAME="',
      '<PARAMVALUE NAME="',
      ' PARAMTYPE="',
      '<CLASSNAME NAME="',
      '<INSTANCE CLASSNAME="',
      '<PROPERTY NAME="',
      ' TYPE="',
      'uint64',
      'datetime',
      'reference',
      'boolean',
      '&amp;',
      '&lt;',
      '&#x41;',
      '&#65;',
      '<![CDATA[',
      ']]>',
      '<!--',
      '-->',
      '<?xml ',
      'IMETHODCALL',
      'METHODCALL',
      'LOCALNAMESPACEPATH',
      'NAMESPACE NAME="',
      'EnumerateInstances',
      'GetInstance',
      'ExecQuery',
      'Associators',
      'References',
      'AssociatorNames',
      'ReferenceNames',
      'ModifyInstance',
      'GetClass',
      'Msvm_ComputerSystem',
      'Msvm_VirtualSystemSettingData',
      'Msvm_SettingsDefineState',
      'RequestStateChange',
      'DefineSystem',
      '"/>',
      '">',
      '</',
    ],
    seeds: () => CIMXML_SEEDS.map(utf8),
    async run(input) {
      const body = fromUtf8(input);
      const request = decodeRequest(body);
      // Building the schema costs milliseconds: one object set, rebuilt only after a method
      // call (which may change it), so that every input sees the same objects.
      if (request.kind === 'extrinsic' || !fixture) fixture = createFixture();
      const { manager } = fixture;
      const context = { host: '127.0.0.1', namespace: request.namespace };
      manager.checkNamespace(request.namespace);
      const inner =
        request.kind === 'intrinsic'
          ? encodeIMethodResponse(request.method, runIntrinsic(manager, request.method, request.params, context))
          : await runMethodCall(manager, request.target, request.method, request.params, context);
      encodeEnvelope(request.messageId, inner);
    },
    isExpectedError: (e) => e instanceof CimXmlProtocolError || e instanceof CimError,
  };
}
