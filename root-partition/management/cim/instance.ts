/**
 * A CIM instance (DSP0004 "Instances"): a class name and typed property values in class order.
 * Every property carries its type so that an adapter can encode it without the schema (DSP0201
 * PROPERTY TYPE). Property names are case-insensitive (DSP0004).
 */
import type { CimType, CimValue } from './types.ts';

export interface CimPropertyValue {
  readonly name: string;
  readonly type: CimType;
  readonly isArray: boolean;
  readonly value: CimValue;
  readonly referenceClass?: string;
  /** The string holds an embedded instance (DSP0004 EmbeddedInstance); value is a CimInstance. */
  readonly embeddedInstance?: string;
}

export class CimInstance {
  readonly className: string;
  readonly properties: readonly CimPropertyValue[];

  constructor(className: string, properties: readonly CimPropertyValue[]) {
    this.className = className;
    this.properties = properties;
  }

  property(name: string): CimPropertyValue | undefined {
    const lower = name.toLowerCase();
    return this.properties.find((p) => p.name.toLowerCase() === lower);
  }

  /** The value; undefined when the instance has no such property (NULL is null). */
  get(name: string): CimValue | undefined {
    return this.property(name)?.value;
  }

  /** A copy with some values replaced; names must exist (types are kept). */
  with(values: Readonly<Record<string, CimValue>>): CimInstance {
    const lowered = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v] as const));
    for (const name of lowered.keys()) {
      if (!this.property(name)) throw new Error(`${this.className} has no property ${name}`);
    }
    return new CimInstance(
      this.className,
      this.properties.map((p) => {
        const lower = p.name.toLowerCase();
        return lowered.has(lower) ? { ...p, value: lowered.get(lower) ?? null } : p;
      }),
    );
  }

  /**
   * DSP0200 PropertyList: null keeps all; otherwise only the named properties (case-insensitive,
   * unknown names ignored) plus, when `keep` says so, the keys.
   */
  project(propertyList: readonly string[] | null, keep: (p: CimPropertyValue) => boolean = () => false): CimInstance {
    if (propertyList === null) return this;
    const wanted = new Set(propertyList.map((n) => n.toLowerCase()));
    return new CimInstance(
      this.className,
      this.properties.filter((p) => wanted.has(p.name.toLowerCase()) || keep(p)),
    );
  }
}
