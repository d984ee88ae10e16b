/**
 * Reading IPARAMVALUEs by the element types DSP0200 gives each intrinsic parameter
 * (DSP0200 intrinsic method signatures). An absent parameter takes its default; one present without a child is NULL;
 * an unknown name is CIM_ERR_NOT_SUPPORTED and a duplicate CIM_ERR_INVALID_PARAMETER (Pegasus).
 */
import { CimError } from '../cim/errors.ts';
import type { CimObjectPath } from '../cim/object-path.ts';
import type { NamedParam } from './message.ts';
import { decodeInstanceName, invalid } from './value-decoder.ts';
import { attribute, firstChild, type XmlElement } from './xml-dom.ts';

export class IntrinsicParams {
  private readonly byName = new Map<string, XmlElement>();

  constructor(method: string, params: readonly NamedParam[], allowed: readonly string[]) {
    const allowedLower = new Map(allowed.map((a) => [a.toLowerCase(), a] as const));
    for (const p of params) {
      const canonical = allowedLower.get(p.name.toLowerCase());
      if (!canonical) throw new CimError('CIM_ERR_NOT_SUPPORTED', `${method} has no parameter ${p.name}`);
      if (this.byName.has(canonical)) throw invalid(`${p.name} given twice`);
      this.byName.set(canonical, p.element);
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** CLASSNAME parameter; null if absent or NULL. */
  className(name: string, required = false): string | null {
    const el = this.byName.get(name);
    const cn = el && firstChild(el, 'CLASSNAME');
    if (el && el.children.length > 0 && !cn) throw invalid(`${name} must be a CLASSNAME`);
    const value = cn ? (attribute(cn, 'NAME') ?? null) : null;
    if (required && !value) throw invalid(`${name} is required`);
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const el = this.byName.get(name);
    if (!el) return fallback;
    const v = firstChild(el, 'VALUE');
    if (!v) return fallback;
    const t = v.text.trim().toLowerCase();
    if (t === 'true') return true;
    if (t === 'false') return false;
    throw invalid(`${name} must be TRUE or FALSE`);
  }

  /** A VALUE string; null if absent/NULL. */
  string(name: string, required = false): string | null {
    const el = this.byName.get(name);
    const v = el && firstChild(el, 'VALUE');
    if (el && el.children.length > 0 && !v) throw invalid(`${name} must be a VALUE`);
    if (required && !v) throw invalid(`${name} is required`);
    return v ? v.text : null;
  }

  /** PropertyList: VALUE.ARRAY of names; null means all (DSP0200). */
  propertyList(): string[] | null {
    const el = this.byName.get('PropertyList');
    if (!el || el.children.length === 0) return null;
    const arr = firstChild(el, 'VALUE.ARRAY');
    if (!arr) throw invalid('PropertyList must be a VALUE.ARRAY');
    return arr.children.map((v) => {
      if (v.name !== 'VALUE') throw invalid('PropertyList holds VALUE elements');
      return v.text;
    });
  }

  /** INSTANCENAME parameter (required). CLASSNAME object names (class-level calls) are not served. */
  instanceName(name: string): CimObjectPath {
    const el = this.byName.get(name);
    if (!el) throw invalid(`${name} is required`);
    const inst = firstChild(el, 'INSTANCENAME');
    if (inst) return decodeInstanceName(inst);
    if (firstChild(el, 'CLASSNAME')) throw new CimError('CIM_ERR_NOT_SUPPORTED', `${name}: class-level operations are not supported`);
    throw invalid(`${name} must be an INSTANCENAME`);
  }
}
