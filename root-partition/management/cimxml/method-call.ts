/**
 * Extrinsic METHODCALL (DSP0200 "Extrinsic method invocation"). Parameters are
 * typed from the server's METHOD declaration, never from PARAMTYPE (wbemcli sends none);
 * embedded instances are accepted escaped, as CDATA, as an INSTANCE child, or as raw markup in
 * VALUE (as wbemcli and pywbem send them). Out parameters are PARAMVALUEs; NULL ones are omitted (an empty
 * PARAMVALUE crashes wbemcli).
 */
import { CimError } from '../cim/errors.ts';
import type { CimObjectManager } from '../cim/object-manager.ts';
import type { CimObjectPath } from '../cim/object-path.ts';
import { isObjectPath } from '../cim/object-path.ts';
import { CimInstance } from '../cim/instance.ts';
import type { CimValue } from '../cim/types.ts';
import type { NamedParam } from './message.ts';
import { decodeWireValue, invalid, toEmbedded, type WireValue } from './value-decoder.ts';
import { encodeValue, type PathContext } from './value-encoder.ts';
import { element } from './xml-writer.ts';

const isElement = (v: WireValue): boolean => v !== null && typeof v === 'object' && !Array.isArray(v) && 'children' in v;

export async function runMethodCall(
  manager: CimObjectManager,
  target: CimObjectPath,
  methodName: string,
  params: readonly NamedParam[],
  context: PathContext,
): Promise<string> {
  const cls = manager.schema.requireClass(target.className);
  const method = cls.methods.find((m) => m.name.toLowerCase() === methodName.toLowerCase());
  if (!method) throw new CimError('CIM_ERR_METHOD_NOT_FOUND', `${cls.name} has no method ${methodName}`);
  const values: Record<string, unknown> = {};
  for (const p of params) {
    const decl = method.parameters.find((d) => d.name.toLowerCase() === p.name.toLowerCase());
    if (!decl) throw invalid(`${method.name} has no parameter ${p.name}`);
    const raw = decodeWireValue(p.element);
    if (decl.embeddedInstance) {
      values[decl.name] = toEmbedded(raw, manager.schema);
    } else if (decl.type === 'reference') {
      const items = Array.isArray(raw) ? raw : [raw];
      if (items.some((i) => i !== null && !isObjectPath(i))) throw invalid(`${decl.name} must be a reference`);
      values[decl.name] = raw;
    } else {
      const items = Array.isArray(raw) ? raw : [raw];
      if (items.some((i) => i !== null && (isElement(i) || isObjectPath(i)))) throw invalid(`${decl.name} must be a ${decl.type} value`);
      values[decl.name] = raw;
    }
  }
  const result = await manager.invokeMethod(target, method.name, values);
  const returnValue = element('RETURNVALUE', [['PARAMTYPE', method.returnType]], encodeValue(result.returnValue, method.returnType, false, context));
  let outParams = '';
  for (const decl of method.parameters) {
    if (!decl.out) continue;
    const entry = Object.entries(result.out).find(([k]) => k.toLowerCase() === decl.name.toLowerCase());
    const value: CimValue = entry?.[1] ?? null;
    if (value === null) continue;
    const isArray = decl.isArray ?? false;
    const embedded = decl.embeddedInstance && (Array.isArray(value) ? value.every((v) => v instanceof CimInstance) : value instanceof CimInstance);
    outParams += element(
      'PARAMVALUE',
      [
        ['NAME', decl.name],
        ['PARAMTYPE', decl.type],
        ['EmbeddedObject', embedded ? 'instance' : undefined],
      ],
      encodeValue(value, decl.type, isArray, context),
    );
  }
  return element('METHODRESPONSE', [['NAME', methodName]], returnValue + outParams);
}
