/**
 * The resolved class hierarchy (DSP0004 "Class inheritance"): each class's full property and
 * method set with CLASSORIGIN, key list, ISA tests, and instance construction typed from the
 * declarations. Class names are case-insensitive (DSP0004).
 */
import type { CimClassDecl, CimMethodDecl, CimPropertyDecl } from './class-declaration.ts';
import { CimBaseClasses } from './cim-base-classes.ts';
import { CimError } from './errors.ts';
import { CimInstance, type CimPropertyValue } from './instance.ts';
import { MsvmAssociations } from './msvm-associations.ts';
import { MsvmClasses } from './msvm-classes.ts';
import { MsvmImageClasses } from './msvm-image-classes.ts';
import { MsvmMigrationClasses } from './msvm-migration-classes.ts';
import { MsvmSwitchClasses } from './msvm-switch-classes.ts';
import type { CimKeyBinding, CimKeyValue, CimObjectPath } from './object-path.ts';
import { isObjectPath } from './object-path.ts';
import { coerceValue } from './value-coercion.ts';
import type { CimValue } from './types.ts';

export interface ResolvedProperty extends CimPropertyDecl {
  /** The class that first declared the property (DSP0201 CLASSORIGIN). */
  readonly classOrigin: string;
  /** Declared or overridden by this very class (DSP0200 LocalOnly). */
  readonly local: boolean;
}

export interface ResolvedMethod extends CimMethodDecl {
  readonly classOrigin: string;
  readonly local: boolean;
}

export interface CimClass {
  readonly name: string;
  readonly superclass?: string;
  readonly association: boolean;
  readonly abstract: boolean;
  readonly description?: string;
  readonly properties: readonly ResolvedProperty[];
  readonly methods: readonly ResolvedMethod[];
  readonly keys: readonly ResolvedProperty[];
}

export class CimSchema {
  private readonly classes = new Map<string, CimClass>();
  private readonly order: string[] = [];

  constructor(declarations: readonly CimClassDecl[]) {
    const byName = new Map(declarations.map((d) => [d.name.toLowerCase(), d] as const));
    const resolving = new Set<string>();
    const resolve = (decl: CimClassDecl): CimClass => {
      const lower = decl.name.toLowerCase();
      const done = this.classes.get(lower);
      if (done) return done;
      if (resolving.has(lower)) throw new Error(`class cycle at ${decl.name}`);
      resolving.add(lower);
      let parent: CimClass | undefined;
      if (decl.superclass) {
        const parentDecl = byName.get(decl.superclass.toLowerCase());
        if (!parentDecl) throw new Error(`${decl.name}: unknown superclass ${decl.superclass}`);
        parent = resolve(parentDecl);
      }
      const resolved = resolveClass(decl, parent);
      this.classes.set(lower, resolved);
      this.order.push(resolved.name);
      return resolved;
    };
    for (const decl of declarations) resolve(decl);
  }

  getClass(name: string): CimClass | undefined {
    return this.classes.get(name.toLowerCase());
  }

  /** The class, or CIM_ERR_INVALID_CLASS (DSP0200 "Status codes"). */
  requireClass(name: string): CimClass {
    const found = this.getClass(name);
    if (!found) throw new CimError('CIM_ERR_INVALID_CLASS', `no class ${name}`);
    return found;
  }

  /** All class names, parents before children. */
  classNames(): readonly string[] {
    return this.order;
  }

  /** DSP0004 ISA: the class is `ancestor` or derives from it. */
  isa(className: string, ancestor: string): boolean {
    const target = ancestor.toLowerCase();
    let current = this.getClass(className);
    while (current) {
      if (current.name.toLowerCase() === target) return true;
      current = current.superclass ? this.getClass(current.superclass) : undefined;
    }
    return false;
  }

  /**
   * DSP0200 EnumerateClassNames: with a class, its subclasses (all descendants when deep,
   * immediate children otherwise); without one, top-level classes or (deep) every class.
   */
  subclassesOf(className: string | null, deep: boolean): string[] {
    const parentOf = (c: CimClass) => c.superclass?.toLowerCase() ?? null;
    const start = className === null ? null : this.requireClass(className).name.toLowerCase();
    return this.order.filter((name) => {
      const cls = this.getClass(name)!;
      if (!deep) return parentOf(cls) === start;
      if (start === null) return true;
      return cls.name.toLowerCase() !== start && this.isa(cls.name, start);
    });
  }

  /**
   * An instance with every property of the class in class order, NULL where no value is given
   * (openwsman-style clients expect every property present, libvirt src/hyperv). Values are
   * coerced from the declarations; an unknown property name is CIM_ERR_NO_SUCH_PROPERTY.
   */
  createInstance(className: string, values: Readonly<Record<string, unknown>>): CimInstance {
    const cls = this.requireClass(className);
    const given = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v] as const));
    for (const name of given.keys()) {
      if (!cls.properties.some((p) => p.name.toLowerCase() === name)) {
        throw new CimError('CIM_ERR_NO_SUCH_PROPERTY', `${cls.name} has no property ${name}`);
      }
    }
    const properties: CimPropertyValue[] = cls.properties.map((p) => ({
      name: p.name,
      type: p.type,
      isArray: p.isArray ?? false,
      value: coerceValue(given.get(p.name.toLowerCase()), p, `${cls.name}.${p.name}`),
      ...(p.referenceClass ? { referenceClass: p.referenceClass } : {}),
      ...(p.embeddedInstance ? { embeddedInstance: p.embeddedInstance } : {}),
    }));
    return new CimInstance(cls.name, properties);
  }

  /** The instance's object path from its class's keys (DSP0004 "Object paths"). */
  pathOf(instance: CimInstance, namespace?: string, host?: string): CimObjectPath {
    const cls = this.requireClass(instance.className);
    const keys: CimKeyBinding[] = cls.keys.map((k) => {
      const value = instance.get(k.name);
      if (value === null || value === undefined || Array.isArray(value)) {
        throw new CimError('CIM_ERR_FAILED', `${cls.name}: key ${k.name} has no value`);
      }
      return { name: k.name, value: value as CimKeyValue };
    });
    return { className: cls.name, keys, ...(namespace ? { namespace } : {}), ...(host ? { host } : {}) };
  }

  /**
   * Check a client-supplied path against the class keys (DSP0200 "Status codes": wrong key set →
   * CIM_ERR_INVALID_PARAMETER) and type its values from the declarations.
   */
  normalizePath(path: CimObjectPath): CimObjectPath {
    const cls = this.requireClass(path.className);
    if (path.keys.length !== cls.keys.length) {
      throw new CimError('CIM_ERR_INVALID_PARAMETER', `${cls.name} has keys ${cls.keys.map((k) => k.name).join(', ')}`);
    }
    const keys = cls.keys.map((k) => {
      const given = path.keys.find((b) => b.name.toLowerCase() === k.name.toLowerCase());
      if (!given) throw new CimError('CIM_ERR_INVALID_PARAMETER', `${cls.name}: missing key ${k.name}`);
      let value: CimValue = given.value;
      if (k.type === 'reference') {
        value = coerceValue(given.value, k, `${cls.name}.${k.name}`, 'CIM_ERR_INVALID_PARAMETER');
        if (isObjectPath(value)) value = this.normalizePath(value);
      } else if (!isObjectPath(given.value)) {
        value = coerceValue(given.value, k, `${cls.name}.${k.name}`, 'CIM_ERR_INVALID_PARAMETER');
      }
      return { name: k.name, value: value as CimKeyValue };
    });
    return { ...path, className: cls.name, keys };
  }
}

function resolveClass(decl: CimClassDecl, parent: CimClass | undefined): CimClass {
  const properties: ResolvedProperty[] = (parent?.properties ?? []).map((p) => ({ ...p, local: false }));
  for (const p of decl.properties) {
    const at = properties.findIndex((q) => q.name.toLowerCase() === p.name.toLowerCase());
    if (at >= 0) {
      // An override keeps the original CLASSORIGIN and inherits what it does not restate.
      const base = properties[at]!;
      properties[at] = { ...base, ...p, key: p.key ?? base.key, classOrigin: base.classOrigin, local: true };
    } else {
      properties.push({ ...p, classOrigin: decl.name, local: true });
    }
  }
  const methods: ResolvedMethod[] = (parent?.methods ?? []).map((m) => ({ ...m, local: false }));
  for (const m of decl.methods ?? []) {
    const at = methods.findIndex((q) => q.name.toLowerCase() === m.name.toLowerCase());
    if (at >= 0) methods[at] = { ...m, classOrigin: methods[at]!.classOrigin, local: true };
    else methods.push({ ...m, classOrigin: decl.name, local: true });
  }
  return {
    name: decl.name,
    ...(decl.superclass ? { superclass: decl.superclass } : {}),
    association: decl.association ?? parent?.association ?? false,
    abstract: decl.abstract ?? false,
    ...(decl.description ? { description: decl.description } : {}),
    properties,
    methods,
    keys: orderKeys(
      decl,
      parent,
      properties.filter((p) => p.key),
    ),
  };
}

/**
 * Key order for paths: the keys a class declares, in its order, then inherited ones in the
 * parent's order (CIM_System gives CreationClassName, Name, as wbemcli shows them).
 */
function orderKeys(decl: CimClassDecl, parent: CimClass | undefined, keys: ResolvedProperty[]): ResolvedProperty[] {
  const declared = decl.properties.filter((p) => p.key).map((p) => p.name.toLowerCase());
  const inherited = (parent?.keys ?? []).map((k) => k.name.toLowerCase());
  const rank = (p: ResolvedProperty) => {
    const name = p.name.toLowerCase();
    const d = declared.indexOf(name);
    return d >= 0 ? d : declared.length + inherited.indexOf(name);
  };
  return [...keys].sort((a, b) => rank(a) - rank(b));
}

/** The root/virtualization/v2 schema: CIM parents, Msvm classes and associations. */
export function createVirtualizationSchema(): CimSchema {
  return new CimSchema([...CimBaseClasses, ...MsvmClasses, ...MsvmSwitchClasses, ...MsvmImageClasses, ...MsvmMigrationClasses, ...MsvmAssociations]);
}
