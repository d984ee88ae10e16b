/**
 * Association traversal computed from association instances (DSP0004 "Associations"; DSP0200
 * Associators/References semantics): an association instance refers to the source through one
 * reference property (the source's role) and to each result through another (the result role).
 */
import type { CimInstance } from './instance.ts';
import { isObjectPath, sameObjectPath, type CimObjectPath } from './object-path.ts';
import type { CimProvider } from './provider.ts';
import type { CimSchema } from './schema.ts';

export interface AssociatorFilter {
  /** Only associations of this class or a subclass. */
  readonly assocClass?: string | null;
  /** Only results of this class or a subclass. */
  readonly resultClass?: string | null;
  /** The reference property that points at the source. */
  readonly role?: string | null;
  /** The reference property that points at the result. */
  readonly resultRole?: string | null;
  /** Further test on the association's own class (WQL RequiredAssocQualifier). */
  readonly assocClassTest?: (className: string) => boolean;
}

export interface ReferenceFilter {
  /** DSP0200 References: ResultClass filters the association class. */
  readonly resultClass?: string | null;
  readonly role?: string | null;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

interface Link {
  readonly association: CimInstance;
  readonly sourceRole: string;
}

function links(
  schema: CimSchema,
  provider: CimProvider,
  source: CimObjectPath,
  assocClass: string | null | undefined,
  role: string | null | undefined,
  test?: (className: string) => boolean,
): Link[] {
  const found: Link[] = [];
  for (const name of schema.classNames()) {
    const cls = schema.getClass(name)!;
    if (!cls.association) continue;
    if (assocClass && !schema.isa(cls.name, assocClass)) continue;
    if (test && !test(cls.name)) continue;
    for (const association of provider.enumerateInstances(cls.name)) {
      for (const p of association.properties) {
        if (p.type !== 'reference' || !isObjectPath(p.value)) continue;
        if (role && !same(p.name, role)) continue;
        if (sameObjectPath(p.value, source)) found.push({ association, sourceRole: p.name });
      }
    }
  }
  return found;
}

/** Association instances that refer to `source`. */
export function referencesOf(schema: CimSchema, provider: CimProvider, source: CimObjectPath, filter: ReferenceFilter = {}): CimInstance[] {
  const result: CimInstance[] = [];
  for (const link of links(schema, provider, source, filter.resultClass, filter.role)) {
    if (!result.includes(link.association)) result.push(link.association);
  }
  return result;
}

/** Instances associated with `source`, each once, in discovery order. */
export function associatorsOf(schema: CimSchema, provider: CimProvider, source: CimObjectPath, filter: AssociatorFilter = {}): CimInstance[] {
  const result: CimInstance[] = [];
  const seen: CimObjectPath[] = [];
  for (const link of links(schema, provider, source, filter.assocClass, filter.role, filter.assocClassTest)) {
    for (const p of link.association.properties) {
      if (p.type !== 'reference' || !isObjectPath(p.value) || same(p.name, link.sourceRole)) continue;
      if (filter.resultRole && !same(p.name, filter.resultRole)) continue;
      const target = p.value;
      if (!schema.getClass(target.className)) continue;
      if (filter.resultClass && !schema.isa(target.className, filter.resultClass)) continue;
      if (seen.some((s) => sameObjectPath(s, target))) continue;
      const instance = provider.getInstance(schema.normalizePath(target));
      if (!instance) continue;
      seen.push(target);
      result.push(instance);
    }
  }
  return result;
}
