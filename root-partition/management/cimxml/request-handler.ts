/**
 * One CIM-XML request from header values and body to response (DSP0200 "CIM operation request
 * and response headers"), independent of the HTTP server so that it can be
 * tested with the exact bytes wbemcli and pywbem send.
 */
import { CimError } from '../cim/errors.ts';
import type { CimObjectManager } from '../cim/object-manager.ts';
import { runIntrinsic } from './intrinsic-operations.ts';
import {
  CimXmlProtocolError,
  decodeRequest,
  decodeRequestDocument,
  encodeEnvelope,
  encodeErrorResponse,
  encodeIMethodResponse,
  requestText,
  xmlFailure,
  type CimXmlRequest,
} from './message.ts';
import { runMethodCall } from './method-call.ts';
import { withPreparsed, type EmbeddedDocument } from './parsed-document.ts';
import { DEFAULT_XML_LIMITS, type XmlLimits } from './xml-limits.ts';
import type { XmlParserThread } from './xml-parser-thread.ts';
import { needsFullRole, type Role } from '../access/roles.ts';

export interface CimXmlHeaders {
  readonly cimOperation?: string;
  readonly cimMethod?: string;
  readonly cimObject?: string;
  readonly cimProtocolVersion?: string;
  readonly cimBatch?: string;
  readonly contentType?: string;
}

export interface CimXmlResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const XML_CONTENT_TYPE = 'application/xml; charset="utf-8"';

function protocolFailure(e: CimXmlProtocolError): CimXmlResponse {
  return { status: e.status, headers: e.cimError ? { CIMError: e.cimError } : {}, body: '' };
}

function percentDecode(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    throw new CimXmlProtocolError(400, 'header-mismatch', 'bad %-encoding in header');
  }
}

/** Header checks that come before the body is looked at (DSP0200 headers; Pegasus's handling). */
function checkHeaders(h: CimXmlHeaders): CimXmlResponse | null {
  // No CIMOperation: not a CIM request at all; 400 without CIMError (Pegasus).
  if (h.cimOperation === undefined) return { status: 400, headers: {}, body: '' };
  if (h.cimOperation.trim().toLowerCase() !== 'methodcall') {
    return { status: 400, headers: { CIMError: 'unsupported-operation' }, body: '' };
  }
  if (h.cimBatch !== undefined) return { status: 501, headers: { CIMError: 'multiple-requests-unsupported' }, body: '' };
  if (h.cimProtocolVersion !== undefined && !/^1\./.test(h.cimProtocolVersion.trim())) {
    return { status: 501, headers: { CIMError: 'unsupported-protocol-version' }, body: '' };
  }
  const type = (h.contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/xml' && type !== 'text/xml') {
    return { status: 400, headers: { CIMError: 'request-not-valid' }, body: '' };
  }
  return null;
}

/** CIMMethod must name the call in the body; CIMObject's namespace part must match (DSP0200 "CIMMethod", "CIMObject"). */
function checkHeadersAgainstBody(h: CimXmlHeaders, request: CimXmlRequest): void {
  const method = percentDecode(h.cimMethod ?? '').trim();
  if (method === '' || method.toLowerCase() !== request.method.toLowerCase()) {
    throw new CimXmlProtocolError(400, 'header-mismatch', 'CIMMethod does not name the method in the body');
  }
  if (h.cimObject !== undefined) {
    const object = percentDecode(h.cimObject).trim();
    const namespace = object.split(':')[0]!.replace(/\\/g, '/');
    if (namespace.toLowerCase() !== request.namespace.toLowerCase()) {
      throw new CimXmlProtocolError(400, 'header-mismatch', 'CIMObject names another namespace');
    }
  }
}

export interface CimXmlHandlingOptions {
  /** Bounds on the request document (xml-limits.ts); a request beyond them is answered 413. */
  readonly xmlLimits?: XmlLimits;
  /** Where large bodies are parsed (xml-parser-thread.ts); without it every body is parsed inline. */
  readonly parser?: XmlParserThread;
}

/**
 * `role` is what the authenticated sender may do (access/roles.ts); a change without `full`
 * is answered CIM_ERR_ACCESS_DENIED in the body (as Pegasus does), nothing run.
 */
export async function handleCimXml(
  manager: CimObjectManager,
  headers: CimXmlHeaders,
  body: string,
  host: string,
  role: Role = 'full',
  options: CimXmlHandlingOptions = {},
): Promise<CimXmlResponse> {
  const early = checkHeaders(headers);
  if (early) return early;
  let request: CimXmlRequest;
  let embedded: readonly EmbeddedDocument[] = [];
  try {
    if (options.parser) {
      const parsed = await options.parser.parse(requestText(body), options.xmlLimits ?? DEFAULT_XML_LIMITS).catch((e: unknown) => {
        throw xmlFailure(e);
      });
      embedded = parsed.embedded;
      request = decodeRequestDocument(parsed.root);
    } else {
      request = decodeRequest(body, options.xmlLimits);
    }
    checkHeadersAgainstBody(headers, request);
  } catch (e) {
    if (e instanceof CimXmlProtocolError) return protocolFailure(e);
    throw e;
  }
  return withPreparsed(embedded, () => respond(manager, request, host, role));
}

async function respond(manager: CimObjectManager, request: CimXmlRequest, host: string, role: Role): Promise<CimXmlResponse> {
  const context = { host, namespace: request.namespace };
  let inner: string;
  try {
    if (role !== 'full' && needsFullRole(request.kind, request.method)) {
      throw new CimError('CIM_ERR_ACCESS_DENIED', `${request.method} changes the host; the ${role} role may only read`);
    }
    manager.checkNamespace(request.namespace);
    if (request.kind === 'intrinsic') {
      inner = encodeIMethodResponse(request.method, runIntrinsic(manager, request.method, request.params, context));
    } else {
      inner = await runMethodCall(manager, request.target, request.method, request.params, context);
    }
  } catch (e) {
    const error = e instanceof CimError ? e : new CimError('CIM_ERR_FAILED', e instanceof Error ? e.message : String(e));
    inner = encodeErrorResponse(request.kind, request.method, error);
  }
  return {
    status: 200,
    headers: { 'Content-Type': XML_CONTENT_TYPE, CIMOperation: 'MethodResponse' },
    body: encodeEnvelope(request.messageId, inner),
  };
}
