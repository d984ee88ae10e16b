/**
 * A CimProvider over instances held in memory, with method handlers registered per class and
 * method. Used by the tests and by adapters' black-box tests; the VMMS provides its own.
 */
import { CimError } from './errors.ts';
import type { CimInstance } from './instance.ts';
import { sameObjectPath, type CimObjectPath } from './object-path.ts';
import type { CimEventListener, CimInstanceEvent, CimMethodResult, CimProvider } from './provider.ts';
import type { CimSchema } from './schema.ts';
import type { CimValue } from './types.ts';

export type CimMethodHandler = (path: CimObjectPath, params: Readonly<Record<string, CimValue>>) => CimMethodResult | Promise<CimMethodResult>;

export class MemoryProvider implements CimProvider {
  private readonly instances = new Map<string, CimInstance[]>();
  private readonly handlers = new Map<string, CimMethodHandler>();
  private readonly listeners = new Set<CimEventListener>();
  private readonly schema: CimSchema;

  constructor(schema: CimSchema) {
    this.schema = schema;
  }

  enumerateInstances(className: string): readonly CimInstance[] {
    return this.instances.get(className.toLowerCase()) ?? [];
  }

  getInstance(path: CimObjectPath): CimInstance | null {
    return this.enumerateInstances(path.className).find((i) => sameObjectPath(this.schema.pathOf(i), path)) ?? null;
  }

  /** Store a new instance; CIM_ERR_ALREADY_EXISTS if its keys are taken. Emits a creation event. */
  add(instance: CimInstance): CimObjectPath {
    const path = this.schema.pathOf(instance);
    if (this.getInstance(path)) throw new CimError('CIM_ERR_ALREADY_EXISTS', `${path.className} exists`);
    const list = this.instances.get(instance.className.toLowerCase()) ?? [];
    list.push(instance);
    this.instances.set(instance.className.toLowerCase(), list);
    this.emit({ kind: 'creation', target: instance, time: new Date() });
    return path;
  }

  /** Replace the instance with the same keys; emits a modification event with the previous one. */
  update(instance: CimInstance): void {
    const path = this.schema.pathOf(instance);
    const list = this.instances.get(instance.className.toLowerCase()) ?? [];
    const at = list.findIndex((i) => sameObjectPath(this.schema.pathOf(i), path));
    if (at < 0) throw new CimError('CIM_ERR_NOT_FOUND', `no ${path.className} to update`);
    const previous = list[at]!;
    list[at] = instance;
    this.emit({ kind: 'modification', target: instance, previous, time: new Date() });
  }

  /** Remove the instance at `path`; emits a deletion event. Returns whether it existed. */
  remove(path: CimObjectPath): boolean {
    const list = this.instances.get(path.className.toLowerCase()) ?? [];
    const at = list.findIndex((i) => sameObjectPath(this.schema.pathOf(i), path));
    if (at < 0) return false;
    const [removed] = list.splice(at, 1);
    this.emit({ kind: 'deletion', target: removed!, time: new Date() });
    return true;
  }

  onMethod(className: string, method: string, handler: CimMethodHandler): void {
    this.handlers.set(`${className}.${method}`.toLowerCase(), handler);
  }

  async invokeMethod(path: CimObjectPath, method: string, params: Readonly<Record<string, CimValue>>): Promise<CimMethodResult> {
    // The handler of the class or its nearest ancestor, as method inheritance works (DSP0004).
    let cls = this.schema.getClass(path.className);
    while (cls) {
      const handler = this.handlers.get(`${cls.name}.${method}`.toLowerCase());
      if (handler) return handler(path, params);
      cls = cls.superclass ? this.schema.getClass(cls.superclass) : undefined;
    }
    throw new CimError('CIM_ERR_METHOD_NOT_AVAILABLE', `${path.className}.${method} is not implemented`);
  }

  subscribe(listener: CimEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: CimInstanceEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }
}
