/**
 * The protocol-neutral CIM operations every adapter (CIM-XML, later WS-Man, the TS client)
 * serves: class lookup, enumeration with inheritance, instance lookup, associations and method
 * invocation, each validated against the schema and failing with the DSP0200 status codes of
 * DSP0200 "Status codes".
 */
import { associatorsOf, referencesOf, type AssociatorFilter, type ReferenceFilter } from './associations.ts';
import { CimError } from './errors.ts';
import { CimInstance } from './instance.ts';
import { VIRTUALIZATION_NAMESPACE, formatObjectPath, type CimObjectPath } from './object-path.ts';
import type { CimEventListener, CimMethodResult, CimProvider } from './provider.ts';
import type { CimClass, CimSchema, ResolvedMethod } from './schema.ts';
import type { CimValue } from './types.ts';
import { coerceValue } from './value-coercion.ts';

export interface EnumerateOptions {
  /** DSP0200 DeepInheritance for instances: FALSE drops properties subclasses added. */
  readonly deepInheritance?: boolean;
}

export interface InvokeResult extends CimMethodResult {
  readonly method: ResolvedMethod;
}

export class CimObjectManager {
  readonly schema: CimSchema;
  readonly provider: CimProvider;
  readonly namespace: string;

  constructor(schema: CimSchema, provider: CimProvider, namespace: string = VIRTUALIZATION_NAMESPACE) {
    this.schema = schema;
    this.provider = provider;
    this.namespace = namespace;
  }

  /** CIM_ERR_INVALID_NAMESPACE unless `namespace` is the one served (compared case-insensitively). */
  checkNamespace(namespace: string): void {
    if (namespace.toLowerCase() !== this.namespace.toLowerCase()) {
      throw new CimError('CIM_ERR_INVALID_NAMESPACE', `namespace ${namespace} is not served`);
    }
  }

  getClass(name: string): CimClass {
    return this.schema.requireClass(name);
  }

  /** Instances of the class and all its subclasses (DSP0200 EnumerateInstances). */
  enumerateInstances(className: string, options: EnumerateOptions = {}): CimInstance[] {
    const cls = this.schema.requireClass(className);
    const names = [cls.name, ...this.schema.subclassesOf(cls.name, true)];
    const instances = names.flatMap((n) => [...this.provider.enumerateInstances(n)]);
    if (options.deepInheritance === false) {
      const own = new Set(cls.properties.map((p) => p.name.toLowerCase()));
      return instances.map(
        (i) =>
          new CimInstance(
            i.className,
            i.properties.filter((p) => own.has(p.name.toLowerCase())),
          ),
      );
    }
    return instances;
  }

  enumerateInstanceNames(className: string): CimObjectPath[] {
    return this.enumerateInstances(className).map((i) => this.schema.pathOf(i));
  }

  /** The instance, CIM_ERR_INVALID_CLASS for an unknown class, CIM_ERR_NOT_FOUND if absent. */
  getInstance(path: CimObjectPath): CimInstance {
    const normalized = this.schema.normalizePath(path);
    const instance = this.provider.getInstance(normalized);
    if (!instance) throw new CimError('CIM_ERR_NOT_FOUND', `no instance ${formatObjectPath(normalized)}`);
    return instance;
  }

  pathOf(instance: CimInstance): CimObjectPath {
    return this.schema.pathOf(instance);
  }

  associators(source: CimObjectPath, filter: AssociatorFilter = {}): CimInstance[] {
    this.checkFilterClasses(filter.assocClass, filter.resultClass);
    return associatorsOf(this.schema, this.provider, this.getPathOfExisting(source), filter);
  }

  references(source: CimObjectPath, filter: ReferenceFilter = {}): CimInstance[] {
    this.checkFilterClasses(filter.resultClass);
    return referencesOf(this.schema, this.provider, this.getPathOfExisting(source), filter);
  }

  /**
   * Validate and run an extrinsic method (DSP0200 "Extrinsic method invocation"): unknown method → 17, unknown or
   * ill-typed parameter → 4, missing target → 6, instance method on a class path → 4.
   * Parameter names match case-insensitively; values are typed from the declaration.
   */
  async invokeMethod(target: CimObjectPath, methodName: string, rawParams: Readonly<Record<string, unknown>>): Promise<InvokeResult> {
    const cls = this.schema.requireClass(target.className);
    const method = cls.methods.find((m) => m.name.toLowerCase() === methodName.toLowerCase());
    if (!method) throw new CimError('CIM_ERR_METHOD_NOT_FOUND', `${cls.name} has no method ${methodName}`);
    let path: CimObjectPath;
    if (target.keys.length === 0) {
      if (!method.isStatic) throw new CimError('CIM_ERR_INVALID_PARAMETER', `${cls.name}.${method.name} needs an instance path`);
      path = { className: cls.name, keys: [] };
    } else {
      path = this.getPathOfExisting(target);
    }
    const params: Record<string, CimValue> = {};
    for (const [name, raw] of Object.entries(rawParams)) {
      const decl = method.parameters.find((p) => p.name.toLowerCase() === name.toLowerCase());
      if (!decl?.in) throw new CimError('CIM_ERR_INVALID_PARAMETER', `${method.name} has no in parameter ${name}`);
      if (decl.name in params) throw new CimError('CIM_ERR_INVALID_PARAMETER', `${decl.name} given twice`);
      params[decl.name] = coerceValue(raw, decl, decl.name, 'CIM_ERR_INVALID_PARAMETER');
    }
    const result = await this.provider.invokeMethod(path, method.name, params);
    return { ...result, method };
  }

  /** Push intrinsic events from the provider (filtering is the WQL layer's job). */
  subscribe(listener: CimEventListener): () => void {
    return this.provider.subscribe(listener);
  }

  private getPathOfExisting(path: CimObjectPath): CimObjectPath {
    return this.pathOf(this.getInstance(path));
  }

  private checkFilterClasses(...names: (string | null | undefined)[]): void {
    for (const n of names) if (n) this.schema.requireClass(n);
  }
}
