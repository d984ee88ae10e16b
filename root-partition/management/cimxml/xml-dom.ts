/**
 * A small element tree over fast-xml-parser's ordered output, for walking CIM-XML requests
 * (DSP0201). Text keeps its whitespace (VALUE text is significant, DSP0201); CDATA is
 * merged into text; entity and character references are decoded once. Every document is first
 * checked by xml-limits.ts (counts and entity names).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { XmlSyntaxError } from './xml-errors.ts';
import { DEFAULT_XML_LIMITS, scanXml, type XmlLimits } from './xml-limits.ts';

export { XmlLimitError, XmlSyntaxError } from './xml-errors.ts';

export interface XmlElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** The element's own text (concatenated text and CDATA children). */
  readonly text: string;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  // fast-xml-parser decodes character references (&#65;) only with htmlEntities on; the HTML
  // names it would add never get here, because scanXml refuses every name but XML's five.
  htmlEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false,
});

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

/**
 * Parse a document; throws XmlSyntaxError if it is not well-formed, declares a DOCTYPE or uses an
 * entity XML does not define, XmlLimitError past the limits (xml-limits.ts).
 */
export function parseXml(text: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  // A DOCTYPE can declare entities whose expansion blows up memory; CIM-XML never needs one.
  if (/<!DOCTYPE/i.test(text)) throw new XmlSyntaxError('DOCTYPE is not allowed');
  scanXml(text, limits);
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new XmlSyntaxError(`${valid.err.msg} (line ${valid.err.line}, column ${valid.err.col})`);
  let nodes: OrderedNode[];
  try {
    // The validator lets some malformed processing instructions through that the parser rejects.
    nodes = parser.parse(text) as OrderedNode[];
  } catch (e) {
    throw new XmlSyntaxError(e instanceof Error ? e.message : String(e));
  }
  const roots = nodes.map(toElement).filter((e): e is XmlElement => e !== null);
  if (roots.length !== 1) throw new XmlSyntaxError('expected exactly one root element');
  return roots[0]!;
}

function toElement(node: OrderedNode): XmlElement | null {
  const name = Object.keys(node).find((k) => k !== ':@');
  if (!name || name === '#text' || name.startsWith('?')) return null;
  const rawChildren = (node[name] as OrderedNode[] | undefined) ?? [];
  const children: XmlElement[] = [];
  let text = '';
  for (const child of rawChildren) {
    if ('#text' in child) text += String(child['#text']);
    else {
      const e = toElement(child);
      if (e) children.push(e);
    }
  }
  return { name, attributes: node[':@'] ?? {}, children, text };
}

/** Attribute by name, case-insensitively (EmbeddedObject comes in two spellings, DSP0201). */
export function attribute(element: XmlElement, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(element.attributes)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

export function childrenNamed(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((c) => c.name === name);
}

export function firstChild(element: XmlElement, ...names: string[]): XmlElement | undefined {
  return element.children.find((c) => names.includes(c.name));
}
