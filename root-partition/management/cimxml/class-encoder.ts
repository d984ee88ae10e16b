/**
 * CLASS elements for GetClass/EnumerateClasses (DSP0201 "CLASS"; in the form
 * sblim wbemcli accepts). wbemcli's cm/ci read Key qualifiers and every PARAMETER from here
 * (they send GetClass first), so LocalOnly=FALSE with IncludeQualifiers=TRUE must be complete.
 */
import type { CimQualifier, ValueMap } from '../cim/class-declaration.ts';
import type { CimClass, ResolvedMethod, ResolvedProperty } from '../cim/schema.ts';
import type { CimParameterDecl } from '../cim/class-declaration.ts';
import { element, escapeText } from './xml-writer.ts';

export interface ClassEncodingOptions {
  /** DSP0200 LocalOnly: only elements this class declares or overrides. */
  readonly localOnly: boolean;
  readonly includeQualifiers: boolean;
  readonly includeClassOrigin: boolean;
  /** null: all properties; otherwise names (case-insensitive). */
  readonly propertyList: readonly string[] | null;
}

function qualifier(q: CimQualifier): string {
  const value = Array.isArray(q.value)
    ? element('VALUE.ARRAY', [], (q.value as readonly string[]).map((v) => element('VALUE', [], escapeText(v))).join(''))
    : element('VALUE', [], escapeText(typeof q.value === 'boolean' ? (q.value ? 'TRUE' : 'FALSE') : String(q.value)));
  const overridable = q.overridable === false ? 'false' : undefined;
  return element(
    'QUALIFIER',
    [
      ['NAME', q.name],
      ['TYPE', q.type],
      ['OVERRIDABLE', overridable],
    ],
    value,
  );
}

const TRUE_QUALIFIER = (name: string): CimQualifier => ({ name, type: 'boolean', value: true });

/** ValueMap/Values pair (DSP0004) from a code table. */
function valueMapQualifiers(map: ValueMap | undefined): CimQualifier[] {
  if (!map || Object.keys(map).length === 0) return [];
  const codes = Object.keys(map);
  return [
    { name: 'ValueMap', type: 'string', value: codes },
    { name: 'Values', type: 'string', value: codes.map((c) => map[Number(c)]!) },
  ];
}

function propertyQualifiers(p: ResolvedProperty): CimQualifier[] {
  const list: CimQualifier[] = [];
  if (p.key) list.push({ ...TRUE_QUALIFIER('Key'), overridable: false });
  if (p.embeddedInstance) list.push({ name: 'EmbeddedInstance', type: 'string', value: p.embeddedInstance });
  if (p.description) list.push({ name: 'Description', type: 'string', value: p.description });
  return [...list, ...valueMapQualifiers(p.valueMap)];
}

function parameterQualifiers(p: CimParameterDecl): CimQualifier[] {
  const list: CimQualifier[] = [];
  if (p.in) list.push(TRUE_QUALIFIER('In'));
  if (p.out) list.push(TRUE_QUALIFIER('Out'));
  if (p.embeddedInstance) list.push({ name: 'EmbeddedInstance', type: 'string', value: p.embeddedInstance });
  return [...list, ...valueMapQualifiers(p.valueMap)];
}

function origin(item: { classOrigin: string; local: boolean }, o: ClassEncodingOptions): [string, string | undefined][] {
  if (!o.includeClassOrigin) return [];
  // PROPAGATED: inherited unchanged from a superclass (DSP0201); omitted when declared or overridden here.
  return [
    ['CLASSORIGIN', item.classOrigin],
    ['PROPAGATED', item.local ? undefined : 'true'],
  ];
}

function encodeProperty(p: ResolvedProperty, o: ClassEncodingOptions): string {
  const qualifiers = o.includeQualifiers ? propertyQualifiers(p).map(qualifier).join('') : '';
  const common = origin(p, o);
  if (p.type === 'reference') {
    return element('PROPERTY.REFERENCE', [['NAME', p.name], ['REFERENCECLASS', p.referenceClass], ...common], qualifiers);
  }
  if (p.isArray) return element('PROPERTY.ARRAY', [['NAME', p.name], ['TYPE', p.type], ...common], qualifiers);
  return element('PROPERTY', [['NAME', p.name], ['TYPE', p.type], ...common], qualifiers);
}

function encodeParameter(p: CimParameterDecl, o: ClassEncodingOptions): string {
  const qualifiers = o.includeQualifiers ? parameterQualifiers(p).map(qualifier).join('') : '';
  if (p.type === 'reference') {
    const name = p.isArray ? 'PARAMETER.REFARRAY' : 'PARAMETER.REFERENCE';
    return element(
      name,
      [
        ['NAME', p.name],
        ['REFERENCECLASS', p.referenceClass],
      ],
      qualifiers,
    );
  }
  if (p.isArray)
    return element(
      'PARAMETER.ARRAY',
      [
        ['NAME', p.name],
        ['TYPE', p.type],
      ],
      qualifiers,
    );
  return element(
    'PARAMETER',
    [
      ['NAME', p.name],
      ['TYPE', p.type],
    ],
    qualifiers,
  );
}

function encodeMethod(m: ResolvedMethod, o: ClassEncodingOptions): string {
  const qualifiers = o.includeQualifiers
    ? [...(m.isStatic ? [TRUE_QUALIFIER('Static')] : []), ...valueMapQualifiers(m.returnCodes)].map(qualifier).join('')
    : '';
  const params = m.parameters.map((p) => encodeParameter(p, o)).join('');
  return element('METHOD', [['NAME', m.name], ['TYPE', m.returnType], ...origin(m, o)], qualifiers + params);
}

export function encodeClass(cls: CimClass, o: ClassEncodingOptions): string {
  const classQualifiers: CimQualifier[] = [];
  if (cls.association) classQualifiers.push({ ...TRUE_QUALIFIER('Association'), overridable: false });
  if (cls.abstract) classQualifiers.push({ ...TRUE_QUALIFIER('Abstract'), overridable: false });
  if (cls.description) classQualifiers.push({ name: 'Description', type: 'string', value: cls.description });
  const wanted = o.propertyList === null ? null : new Set(o.propertyList.map((n) => n.toLowerCase()));
  const properties = cls.properties
    .filter((p) => !o.localOnly || p.local)
    .filter((p) => wanted === null || wanted.has(p.name.toLowerCase()))
    .map((p) => encodeProperty(p, o))
    .join('');
  const methods = cls.methods
    .filter((m) => !o.localOnly || m.local)
    .map((m) => encodeMethod(m, o))
    .join('');
  const head = o.includeQualifiers ? classQualifiers.map(qualifier).join('') : '';
  return element(
    'CLASS',
    [
      ['NAME', cls.name],
      ['SUPERCLASS', cls.superclass],
    ],
    head + properties + methods,
  );
}
