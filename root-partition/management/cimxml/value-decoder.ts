/**
 * Reading DSP0201 values, paths and instances from requests. Values stay untyped here (wire
 * text, arrays of text, paths, INSTANCE elements); the schema types them, because wbemcli sends
 * no PARAMTYPE and guesses KEYVALUE types.
 */
import { CimError } from '../cim/errors.ts';
import type { CimInstance } from '../cim/instance.ts';
import type { CimKeyBinding, CimObjectPath } from '../cim/object-path.ts';
import type { CimSchema } from '../cim/schema.ts';
import { parseEmbeddedXml } from './parsed-document.ts';
import { attribute, childrenNamed, firstChild, XmlLimitError, XmlSyntaxError, type XmlElement } from './xml-dom.ts';

/** An untyped wire value: text, a path, an INSTANCE element, an array of those, or NULL. */
export type WireValue = string | CimObjectPath | XmlElement | readonly WireValue[] | null;

export function invalid(detail: string): CimError {
  return new CimError('CIM_ERR_INVALID_PARAMETER', detail);
}

export function decodeLocalNamespacePath(el: XmlElement): string {
  const parts = childrenNamed(el, 'NAMESPACE').map((n) => attribute(n, 'NAME') ?? '');
  if (parts.length === 0 || parts.some((p) => p === '')) throw invalid('LOCALNAMESPACEPATH needs NAMESPACE NAME elements');
  return parts.join('/');
}

export function decodeInstanceName(el: XmlElement): CimObjectPath {
  const className = attribute(el, 'CLASSNAME');
  if (!className) throw invalid('INSTANCENAME without CLASSNAME');
  const keys: CimKeyBinding[] = [];
  for (const kb of childrenNamed(el, 'KEYBINDING')) {
    const name = attribute(kb, 'NAME');
    if (!name) throw invalid('KEYBINDING without NAME');
    const kv = firstChild(kb, 'KEYVALUE', 'VALUE.REFERENCE');
    if (!kv) throw invalid(`KEYBINDING ${name} without a value`);
    keys.push({ name, value: kv.name === 'KEYVALUE' ? kv.text : decodeReference(kv) });
  }
  if (keys.length === 0 && el.children.length > 0) throw invalid('INSTANCENAME must use KEYBINDING elements');
  return { className, keys };
}

/** VALUE.REFERENCE content in any of the forms wbemcli and pywbem send. */
export function decodeReference(el: XmlElement): CimObjectPath {
  const inner = el.name === 'VALUE.REFERENCE' ? el.children[0] : el;
  if (!inner) throw invalid('empty VALUE.REFERENCE');
  switch (inner.name) {
    case 'INSTANCEPATH': {
      const nsp = firstChild(inner, 'NAMESPACEPATH');
      const name = firstChild(inner, 'INSTANCENAME');
      if (!nsp || !name) throw invalid('INSTANCEPATH needs NAMESPACEPATH and INSTANCENAME');
      const host = firstChild(nsp, 'HOST')?.text;
      const lnsp = firstChild(nsp, 'LOCALNAMESPACEPATH');
      if (!lnsp) throw invalid('NAMESPACEPATH needs LOCALNAMESPACEPATH');
      return { ...decodeInstanceName(name), namespace: decodeLocalNamespacePath(lnsp), ...(host ? { host } : {}) };
    }
    case 'LOCALINSTANCEPATH': {
      const lnsp = firstChild(inner, 'LOCALNAMESPACEPATH');
      const name = firstChild(inner, 'INSTANCENAME');
      if (!lnsp || !name) throw invalid('LOCALINSTANCEPATH needs LOCALNAMESPACEPATH and INSTANCENAME');
      return { ...decodeInstanceName(name), namespace: decodeLocalNamespacePath(lnsp) };
    }
    case 'INSTANCENAME':
      return decodeInstanceName(inner);
    case 'CLASSNAME': {
      const className = attribute(inner, 'NAME');
      if (!className) throw invalid('CLASSNAME without NAME');
      return { className, keys: [] };
    }
    default:
      throw invalid(`unsupported reference form ${inner.name}`);
  }
}

/** The value carried by a PARAMVALUE/IPARAMVALUE/PROPERTY*: absent value is NULL. */
export function decodeWireValue(el: XmlElement): WireValue {
  const child = el.children.find((c) => c.name !== 'QUALIFIER');
  if (!child) return null;
  switch (child.name) {
    case 'VALUE': {
      // wbemcli passes an embedded instance typed unescaped as raw markup inside VALUE.
      const nested = firstChild(child, 'INSTANCE');
      return nested ?? child.text;
    }
    case 'VALUE.ARRAY':
      return child.children.map((v) => (v.name === 'VALUE.NULL' ? null : (firstChild(v, 'INSTANCE') ?? v.text)));
    case 'VALUE.REFERENCE':
      return decodeReference(child);
    case 'VALUE.REFARRAY':
      return child.children.map((v) => (v.name === 'VALUE.NULL' ? null : decodeReference(v)));
    case 'INSTANCE':
      return child;
    default:
      throw invalid(`unsupported value element ${child.name}`);
  }
}

/**
 * An INSTANCE element typed by the schema (DSP0201 "INSTANCE"). QUALIFIER elements are ignored
 * (wbemcli ci copies class qualifiers into new instances). Embedded instances in
 * properties that declare EmbeddedInstance are decoded recursively.
 */
export function decodeInstance(el: XmlElement, schema: CimSchema, depth = 0): CimInstance {
  if (depth > 8) throw invalid('embedded instances nested too deeply');
  const className = attribute(el, 'CLASSNAME');
  if (!className) throw invalid('INSTANCE without CLASSNAME');
  const cls = schema.getClass(className);
  if (!cls) throw invalid(`embedded instance of unknown class ${className}`);
  const values: Record<string, unknown> = {};
  for (const p of el.children) {
    if (p.name === 'QUALIFIER') continue;
    if (!p.name.startsWith('PROPERTY')) throw invalid(`unexpected ${p.name} in INSTANCE`);
    const name = attribute(p, 'NAME');
    if (!name) throw invalid('PROPERTY without NAME');
    const decl = cls.properties.find((d) => d.name.toLowerCase() === name.toLowerCase());
    if (!decl) throw invalid(`${cls.name} has no property ${name}`);
    const raw = decodeWireValue(p);
    values[decl.name] = decl.embeddedInstance ? toEmbedded(raw, schema, depth + 1) : raw;
  }
  try {
    return schema.createInstance(cls.name, values);
  } catch (e) {
    if (e instanceof CimError) throw invalid(e.message);
    throw e;
  }
}

/** Embedded instance text (escaped, CDATA) or raw INSTANCE markup → instances (DSP0201 EmbeddedObject). */
export function toEmbedded(raw: WireValue, schema: CimSchema, depth = 0): unknown {
  if (raw === null) return null;
  if (Array.isArray(raw)) return raw.map((r) => toEmbedded(r as WireValue, schema, depth));
  if (typeof raw === 'string') {
    if (raw.trim() === '') return null;
    let parsed: XmlElement;
    try {
      parsed = parseEmbeddedXml(raw.trim());
    } catch (e) {
      if (e instanceof XmlSyntaxError) throw invalid(`embedded instance is not well-formed XML: ${e.message}`);
      if (e instanceof XmlLimitError) throw new CimError('CIM_ERR_SERVER_LIMITS_EXCEEDED', `embedded instance too large: ${e.message}`);
      throw e;
    }
    if (parsed.name !== 'INSTANCE') throw invalid(`embedded object must be an INSTANCE, not ${parsed.name}`);
    return decodeInstance(parsed, schema, depth);
  }
  if ('name' in raw && 'children' in raw) return decodeInstance(raw as XmlElement, schema, depth);
  throw invalid('a reference is not an embedded instance');
}
