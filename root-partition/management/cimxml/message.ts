/**
 * The CIM-XML message envelope (DSP0201 "Message elements"): decoding a
 * SIMPLEREQ and writing SIMPLERSP bodies. Problems that make a message unprocessable as CIM are
 * CimXmlProtocolError (an HTTP status plus the DSP0200 CIMError header value); everything after
 * that is a CIM error inside a 200 response.
 */
import type { CimError } from '../cim/errors.ts';
import type { CimObjectPath } from '../cim/object-path.ts';
import { decodeInstanceName, decodeLocalNamespacePath } from './value-decoder.ts';
import { attribute, firstChild, parseXml, XmlLimitError, XmlSyntaxError, type XmlElement } from './xml-dom.ts';
import type { XmlLimits } from './xml-limits.ts';
import { element, XML_DECLARATION } from './xml-writer.ts';

/** DSP0200 "CIMError" header values. */
export type CimErrorHeader =
  | 'unsupported-protocol-version'
  | 'multiple-requests-unsupported'
  | 'unsupported-cim-version'
  | 'unsupported-dtd-version'
  | 'request-not-valid'
  | 'request-not-well-formed'
  | 'request-not-loosely-valid'
  | 'header-mismatch'
  | 'unsupported-operation';

export class CimXmlProtocolError extends Error {
  readonly status: 400 | 413 | 501;
  /** null for 413: DSP0200 has no CIMError value for a request beyond the server's limits. */
  readonly cimError: CimErrorHeader | null;
  constructor(status: 400 | 413 | 501, cimError: CimErrorHeader | null, detail: string) {
    super(`${cimError ?? status}: ${detail}`);
    this.name = 'CimXmlProtocolError';
    this.status = status;
    this.cimError = cimError;
  }
}

export interface NamedParam {
  readonly name: string;
  readonly element: XmlElement;
}

export type CimXmlRequest =
  | { readonly kind: 'intrinsic'; readonly messageId: string; readonly method: string; readonly namespace: string; readonly params: readonly NamedParam[] }
  | {
      readonly kind: 'extrinsic';
      readonly messageId: string;
      readonly method: string;
      readonly namespace: string;
      readonly target: CimObjectPath;
      readonly params: readonly NamedParam[];
    };

const notValid = (detail: string) => new CimXmlProtocolError(400, 'request-not-valid', detail);

export function decodeRequest(body: string, limits?: XmlLimits): CimXmlRequest {
  let root: XmlElement;
  try {
    root = parseXml(requestText(body), limits);
  } catch (e) {
    throw xmlFailure(e);
  }
  return decodeRequestDocument(root);
}

/** The body as the parser takes it: without a UTF-8 byte order mark (wbemcli and pywbem both accept one). */
export function requestText(body: string): string {
  return body.replace(/^\uFEFF/, '');
}

/** XML errors of the request document as DSP0200 answers them; anything else unchanged. */
export function xmlFailure(e: unknown): unknown {
  if (e instanceof XmlSyntaxError) return new CimXmlProtocolError(400, 'request-not-well-formed', e.message);
  if (e instanceof XmlLimitError) return new CimXmlProtocolError(413, null, e.message);
  return e;
}

/** A parsed request document as a CIM request (DSP0201 "Message elements"). */
export function decodeRequestDocument(root: XmlElement): CimXmlRequest {
  if (root.name !== 'CIM') throw notValid(`root element is ${root.name}, not CIM`);
  // DSP0200: CIMVERSION/DTDVERSION 2.x and PROTOCOLVERSION 1.x are what this server speaks.
  if (!/^2\./.test(attribute(root, 'CIMVERSION') ?? '')) throw new CimXmlProtocolError(501, 'unsupported-cim-version', 'CIMVERSION must be 2.x');
  if (!/^2\./.test(attribute(root, 'DTDVERSION') ?? '')) throw new CimXmlProtocolError(501, 'unsupported-dtd-version', 'DTDVERSION must be 2.x');
  const message = firstChild(root, 'MESSAGE');
  if (!message) throw notValid('no MESSAGE');
  const messageId = attribute(message, 'ID');
  if (messageId === undefined) throw notValid('MESSAGE without ID');
  if (!/^1\./.test(attribute(message, 'PROTOCOLVERSION') ?? '')) {
    throw new CimXmlProtocolError(501, 'unsupported-protocol-version', 'PROTOCOLVERSION must be 1.x');
  }
  if (firstChild(message, 'MULTIREQ')) throw new CimXmlProtocolError(501, 'multiple-requests-unsupported', 'MULTIREQ');
  const simple = firstChild(message, 'SIMPLEREQ');
  if (!simple) throw notValid('no SIMPLEREQ');
  const call = firstChild(simple, 'IMETHODCALL', 'METHODCALL');
  if (!call) throw notValid('SIMPLEREQ without IMETHODCALL or METHODCALL');
  const method = attribute(call, 'NAME');
  if (!method) throw notValid(`${call.name} without NAME`);
  try {
    if (call.name === 'IMETHODCALL') {
      const lnsp = firstChild(call, 'LOCALNAMESPACEPATH');
      if (!lnsp) throw notValid('IMETHODCALL without LOCALNAMESPACEPATH');
      return { kind: 'intrinsic', messageId, method, namespace: decodeLocalNamespacePath(lnsp), params: namedParams(call, 'IPARAMVALUE') };
    }
    const instancePath = firstChild(call, 'LOCALINSTANCEPATH');
    const classPath = firstChild(call, 'LOCALCLASSPATH');
    const pathEl = instancePath ?? classPath;
    const lnsp = pathEl && firstChild(pathEl, 'LOCALNAMESPACEPATH');
    if (!pathEl || !lnsp) throw notValid('METHODCALL needs LOCALINSTANCEPATH or LOCALCLASSPATH');
    let target: CimObjectPath;
    if (instancePath) {
      const name = firstChild(instancePath, 'INSTANCENAME');
      if (!name) throw notValid('LOCALINSTANCEPATH without INSTANCENAME');
      target = decodeInstanceName(name);
    } else {
      const className = attribute(firstChild(pathEl, 'CLASSNAME') ?? pathEl, 'NAME');
      if (!className) throw notValid('LOCALCLASSPATH without CLASSNAME');
      target = { className, keys: [] };
    }
    return { kind: 'extrinsic', messageId, method, namespace: decodeLocalNamespacePath(lnsp), target, params: namedParams(call, 'PARAMVALUE') };
  } catch (e) {
    if (e instanceof CimXmlProtocolError) throw e;
    throw notValid(e instanceof Error ? e.message : String(e));
  }
}

function namedParams(call: XmlElement, elementName: string): NamedParam[] {
  return call.children
    .filter((c) => c.name === elementName)
    .map((c) => {
      const name = attribute(c, 'NAME');
      if (!name) throw notValid(`${elementName} without NAME`);
      return { name, element: c };
    });
}

/** The response document around one SIMPLERSP body (DSP0201; versions as Pegasus sends). */
export function encodeEnvelope(messageId: string, body: string): string {
  return `${XML_DECLARATION}${element(
    'CIM',
    [
      ['CIMVERSION', '2.0'],
      ['DTDVERSION', '2.0'],
    ],
    element(
      'MESSAGE',
      [
        ['ID', messageId],
        ['PROTOCOLVERSION', '1.0'],
      ],
      element('SIMPLERSP', [], body),
    ),
  )}`;
}

/** IMETHODRESPONSE; `returnValue` null for void operations (no IRETURNVALUE: pywbem rejects one). */
export function encodeIMethodResponse(method: string, returnValue: string | null): string {
  return element('IMETHODRESPONSE', [['NAME', method]], returnValue === null ? '' : element('IRETURNVALUE', [], returnValue));
}

/** ERROR inside (I)METHODRESPONSE, never with INSTANCE children (wbemcli rejects them);
 * wbemcli %-decodes the description, so % is written %25. */
export function encodeErrorResponse(kind: 'intrinsic' | 'extrinsic', method: string, error: CimError): string {
  const err = element('ERROR', [
    ['CODE', String(error.code)],
    ['DESCRIPTION', error.message.replace(/%/g, '%25')],
  ]);
  return element(kind === 'intrinsic' ? 'IMETHODRESPONSE' : 'METHODRESPONSE', [['NAME', method]], err);
}
