/**
 * Encoding values, paths and instances as DSP0201 elements, in the forms wbemcli and pywbem
 * both accept: INSTANCEPATH with NAMESPACEPATH/HOST for references and
 * VALUE.OBJECTWITHPATH, KEYVALUE always with VALUETYPE, NULL as an element without VALUE,
 * EmbeddedObject="instance" only on scalar PROPERTY/PARAMVALUE.
 */
import { CimInstance, type CimPropertyValue } from '../cim/instance.ts';
import { isObjectPath, type CimKeyValue, type CimObjectPath } from '../cim/object-path.ts';
import type { CimScalar, CimType, CimValue } from '../cim/types.ts';
import { element, escapeAttribute, escapeText } from './xml-writer.ts';

/** Where paths in a response live: HOST text and the namespace (DSP0201 NAMESPACEPATH). */
export interface PathContext {
  readonly host: string;
  readonly namespace: string;
}

export function encodeLocalNamespacePath(namespace: string): string {
  const parts = namespace.split('/').filter((p) => p !== '');
  return element('LOCALNAMESPACEPATH', [], parts.map((p) => element('NAMESPACE', [['NAME', p]])).join(''));
}

export function encodeNamespacePath(context: PathContext): string {
  return element('NAMESPACEPATH', [], element('HOST', [], escapeText(context.host)) + encodeLocalNamespacePath(context.namespace));
}

function keyValueType(value: CimKeyValue): string {
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number' || typeof value === 'bigint') return 'numeric';
  return 'string';
}

export function encodeInstanceName(path: CimObjectPath, context: PathContext): string {
  const bindings = path.keys.map((k) => {
    const v = k.value;
    const inner = isObjectPath(v)
      ? element('VALUE.REFERENCE', [], encodeInstancePath(v, context))
      : element('KEYVALUE', [['VALUETYPE', keyValueType(v)]], escapeText(scalarText(v)));
    return element('KEYBINDING', [['NAME', k.name]], inner);
  });
  return element('INSTANCENAME', [['CLASSNAME', path.className]], bindings.join(''));
}

/** INSTANCEPATH with the path's own host/namespace when it has them, else the context's. */
export function encodeInstancePath(path: CimObjectPath, context: PathContext): string {
  const own = { host: path.host ?? context.host, namespace: path.namespace ?? context.namespace };
  return element('INSTANCEPATH', [], encodeNamespacePath(own) + encodeInstanceName(path, context));
}

export function encodeReference(path: CimObjectPath, context: PathContext): string {
  return element('VALUE.REFERENCE', [], encodeInstancePath(path, context));
}

/** VALUE text of a scalar (DSP0201 "VALUE"): TRUE/FALSE, decimal integers, INF/NaN for reals. */
export function scalarText(value: string | number | bigint | boolean): string {
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (value === Infinity) return 'INF';
    if (value === -Infinity) return '-INF';
  }
  return String(value);
}

function valueElement(value: CimScalar, context: PathContext): string {
  // Embedded instance text escapes quotes too, as wbemcli accepts it (GetSummaryInformation).
  if (value instanceof CimInstance) return element('VALUE', [], escapeAttribute(encodeInstance(value, context)));
  if (isObjectPath(value)) return encodeReference(value, context);
  return element('VALUE', [], escapeText(scalarText(value)));
}

/** VALUE / VALUE.ARRAY / VALUE.REFERENCE / VALUE.REFARRAY for a typed value; '' for NULL. */
export function encodeValue(value: CimValue, type: CimType, isArray: boolean, context: PathContext): string {
  if (value === null) return '';
  if (isArray) {
    const items = Array.isArray(value) ? value : [value];
    if (type === 'reference') return element('VALUE.REFARRAY', [], items.map((v) => valueElement(v, context)).join(''));
    return element('VALUE.ARRAY', [], items.map((v) => valueElement(v, context)).join(''));
  }
  if (Array.isArray(value)) throw new Error('array value for a scalar');
  return valueElement(value, context);
}

export function encodeProperty(p: CimPropertyValue, context: PathContext): string {
  if (p.type === 'reference' && !p.isArray) {
    return element(
      'PROPERTY.REFERENCE',
      [
        ['NAME', p.name],
        ['REFERENCECLASS', p.referenceClass],
      ],
      encodeValue(p.value, p.type, false, context),
    );
  }
  if (p.isArray) {
    // No EmbeddedObject on PROPERTY.ARRAY: wbemcli 1.6.3 rejects it.
    return element(
      'PROPERTY.ARRAY',
      [
        ['NAME', p.name],
        ['TYPE', p.type],
      ],
      encodeValue(p.value, p.type, true, context),
    );
  }
  const embedded = p.embeddedInstance && p.value instanceof CimInstance ? 'instance' : undefined;
  return element(
    'PROPERTY',
    [
      ['NAME', p.name],
      ['TYPE', p.type],
      ['EmbeddedObject', embedded],
    ],
    encodeValue(p.value, p.type, false, context),
  );
}

export function encodeInstance(instance: CimInstance, context: PathContext): string {
  return element('INSTANCE', [['CLASSNAME', instance.className]], instance.properties.map((p) => encodeProperty(p, context)).join(''));
}
