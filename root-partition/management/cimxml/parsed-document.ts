/**
 * A request document parsed ahead of time, with every embedded document in it: VALUE text that
 * is markup (an embedded instance sent escaped or as CDATA, DSP0201 EmbeddedObject) is parsed too, up to
 * the nesting decodeInstance accepts, so that a request parsed on the parser thread needs no
 * further parsing on the service's thread. Plain data, so it crosses threads by structured clone.
 */
import { parseXml, XmlLimitError, XmlSyntaxError, type XmlElement } from './xml-dom.ts';
import type { XmlLimits } from './xml-limits.ts';

export type XmlFailure = { readonly kind: 'syntax' | 'limit'; readonly message: string };

export interface EmbeddedDocument {
  /** The VALUE text, trimmed: what value-decoder.ts hands to the parser. */
  readonly text: string;
  readonly root?: XmlElement;
  readonly failure?: XmlFailure;
}

export interface ParsedDocument {
  readonly root: XmlElement;
  readonly embedded: readonly EmbeddedDocument[];
}

/** Embedded instances nest at most this deep (value-decoder.ts decodeInstance). */
const MAX_EMBEDDING = 9;

export function parseDocument(text: string, limits?: XmlLimits): ParsedDocument {
  const root = parseXml(text, limits);
  const embedded: EmbeddedDocument[] = [];
  const seen = new Set<string>();
  const visit = (el: XmlElement, depth: number) => {
    const stack = [el];
    while (stack.length > 0) {
      const e = stack.pop()!;
      stack.push(...e.children);
      if (e.name !== 'VALUE' || depth >= MAX_EMBEDDING) continue;
      const inner = e.text.trim();
      if (!inner.startsWith('<') || seen.has(inner)) continue;
      seen.add(inner);
      try {
        const r = parseXml(inner);
        embedded.push({ text: inner, root: r });
        visit(r, depth + 1);
      } catch (err) {
        embedded.push({ text: inner, failure: failureOf(err) });
      }
    }
  };
  visit(root, 0);
  return { root, embedded };
}

export function failureOf(e: unknown): XmlFailure {
  if (e instanceof XmlSyntaxError) return { kind: 'syntax', message: e.message };
  if (e instanceof XmlLimitError) return { kind: 'limit', message: e.message };
  throw e;
}

export function failureError(f: XmlFailure): Error {
  return f.kind === 'syntax' ? new XmlSyntaxError(f.message) : new XmlLimitError(f.message);
}

/**
 * Embedded documents of the requests being served, by text. parseEmbeddedXml looks here before
 * parsing; entries are counted, so two requests carrying the same text share one entry.
 */
const preparsed = new Map<string, { doc: EmbeddedDocument; users: number }>();

export async function withPreparsed<T>(docs: readonly EmbeddedDocument[], run: () => Promise<T>): Promise<T> {
  for (const doc of docs) {
    const entry = preparsed.get(doc.text);
    if (entry) entry.users++;
    else preparsed.set(doc.text, { doc, users: 1 });
  }
  try {
    return await run();
  } finally {
    for (const doc of docs) {
      const entry = preparsed.get(doc.text)!;
      if (--entry.users === 0) preparsed.delete(doc.text);
    }
  }
}

/** parseXml for embedded instance text, using the parser thread's result when there is one. */
export function parseEmbeddedXml(text: string): XmlElement {
  const doc = preparsed.get(text)?.doc;
  if (!doc) return parseXml(text);
  if (doc.failure) throw failureError(doc.failure);
  return doc.root!;
}
