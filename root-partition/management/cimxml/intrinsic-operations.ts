/**
 * The intrinsic operations served (DSP0200 "Intrinsic methods"), each returning the IRETURNVALUE
 * content DSP0200 gives each. Writes (CreateInstance, ModifyInstance, DeleteInstance,
 * SetProperty), class and qualifier writes and pull operations answer CIM_ERR_NOT_SUPPORTED:
 * Msvm objects change only through methods, and pywbem falls back from pull operations on 7.
 */
import { CimError } from '../cim/errors.ts';
import type { CimInstance } from '../cim/instance.ts';
import type { CimObjectManager } from '../cim/object-manager.ts';
import type { CimObjectPath } from '../cim/object-path.ts';
import { executeWql } from '../wql/query-executor.ts';
import { encodeClass } from './class-encoder.ts';
import type { NamedParam } from './message.ts';
import { IntrinsicParams } from './intrinsic-params.ts';
import { encodeInstance, encodeInstanceName, encodeInstancePath, encodeNamespacePath, encodeValue, type PathContext } from './value-encoder.ts';
import { element } from './xml-writer.ts';

type Operation = (manager: CimObjectManager, p: IntrinsicParams, context: PathContext) => string;

interface OperationSpec {
  readonly params: readonly string[];
  readonly run: Operation;
}

/** DSP0200 PropertyList on instances: the INSTANCENAME keeps all keys, the INSTANCE only what was asked. */
const project = (instance: CimInstance, list: string[] | null) => instance.project(list);

function objectWithPath(manager: CimObjectManager, instance: CimInstance, context: PathContext, list: string[] | null): string {
  return element('VALUE.OBJECTWITHPATH', [], encodeInstancePath(manager.pathOf(instance), context) + encodeInstance(project(instance, list), context));
}

function objectPath(path: CimObjectPath, context: PathContext): string {
  return element('OBJECTPATH', [], encodeInstancePath(path, context));
}

function classOptions(p: IntrinsicParams, localOnlyDefault: boolean) {
  return {
    localOnly: p.boolean('LocalOnly', localOnlyDefault),
    includeQualifiers: p.boolean('IncludeQualifiers', true),
    includeClassOrigin: p.boolean('IncludeClassOrigin', false),
    propertyList: p.has('PropertyList') ? p.propertyList() : null,
  };
}

const associatorParams = ['ObjectName', 'AssocClass', 'ResultClass', 'Role', 'ResultRole'];
const instanceFlags = ['IncludeQualifiers', 'IncludeClassOrigin', 'PropertyList'];

export const IntrinsicOperations: Readonly<Record<string, OperationSpec>> = {
  GetClass: {
    params: ['ClassName', 'LocalOnly', 'IncludeQualifiers', 'IncludeClassOrigin', 'PropertyList'],
    run: (m, p) => encodeClass(m.getClass(p.className('ClassName', true)!), classOptions(p, true)),
  },
  EnumerateClasses: {
    params: ['ClassName', 'DeepInheritance', 'LocalOnly', 'IncludeQualifiers', 'IncludeClassOrigin'],
    run: (m, p) => {
      const options = { ...classOptions(p, true), propertyList: null };
      return m.schema
        .subclassesOf(p.className('ClassName'), p.boolean('DeepInheritance', false))
        .map((n) => encodeClass(m.getClass(n), options))
        .join('');
    },
  },
  EnumerateClassNames: {
    params: ['ClassName', 'DeepInheritance'],
    run: (m, p) =>
      m.schema
        .subclassesOf(p.className('ClassName'), p.boolean('DeepInheritance', false))
        .map((n) => element('CLASSNAME', [['NAME', n]]))
        .join(''),
  },
  GetInstance: {
    // LocalOnly is deprecated for instances and ignored (DSP0200 GetInstance).
    params: ['InstanceName', 'LocalOnly', ...instanceFlags],
    run: (m, p, c) => encodeInstance(project(m.getInstance(p.instanceName('InstanceName')), p.propertyList()), c),
  },
  EnumerateInstances: {
    params: ['ClassName', 'LocalOnly', 'DeepInheritance', ...instanceFlags],
    run: (m, p, c) => {
      const list = p.propertyList();
      return m
        .enumerateInstances(p.className('ClassName', true)!, { deepInheritance: p.boolean('DeepInheritance', true) })
        .map((i) => element('VALUE.NAMEDINSTANCE', [], encodeInstanceName(m.pathOf(i), c) + encodeInstance(project(i, list), c)))
        .join('');
    },
  },
  EnumerateInstanceNames: {
    params: ['ClassName'],
    run: (m, p, c) =>
      m
        .enumerateInstanceNames(p.className('ClassName', true)!)
        .map((path) => encodeInstanceName(path, c))
        .join(''),
  },
  Associators: {
    params: [...associatorParams, ...instanceFlags],
    run: (m, p, c) => {
      const list = p.propertyList();
      return m
        .associators(p.instanceName('ObjectName'), associatorFilter(p))
        .map((i) => objectWithPath(m, i, c, list))
        .join('');
    },
  },
  AssociatorNames: {
    params: associatorParams,
    run: (m, p, c) =>
      m
        .associators(p.instanceName('ObjectName'), associatorFilter(p))
        .map((i) => objectPath(m.pathOf(i), c))
        .join(''),
  },
  References: {
    params: ['ObjectName', 'ResultClass', 'Role', ...instanceFlags],
    run: (m, p, c) => {
      const list = p.propertyList();
      return m
        .references(p.instanceName('ObjectName'), referenceFilter(p))
        .map((i) => objectWithPath(m, i, c, list))
        .join('');
    },
  },
  ReferenceNames: {
    params: ['ObjectName', 'ResultClass', 'Role'],
    run: (m, p, c) =>
      m
        .references(p.instanceName('ObjectName'), referenceFilter(p))
        .map((i) => objectPath(m.pathOf(i), c))
        .join(''),
  },
  GetProperty: {
    // DSP0200 GetProperty: VALUE, VALUE.ARRAY or VALUE.REFERENCE; nothing for NULL (wbemcli gp).
    params: ['InstanceName', 'PropertyName'],
    run: (m, p, c) => {
      const instance = m.getInstance(p.instanceName('InstanceName'));
      const name = p.string('PropertyName', true)!;
      const property = instance.property(name);
      if (!property) throw new CimError('CIM_ERR_NO_SUCH_PROPERTY', `${instance.className} has no property ${name}`);
      return encodeValue(property.value, property.type, property.isArray, c);
    },
  },
  ExecQuery: {
    params: ['QueryLanguage', 'Query'],
    run: (m, p, c) => {
      const language = p.string('QueryLanguage', true)!;
      // DSP0200 ExecQuery: accept WQL and DMTF:CQL (the shared SELECT subset), else code 14.
      if (!['wql', 'dmtf:cql'].includes(language.trim().toLowerCase())) {
        throw new CimError('CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED', `query language ${language} is not supported`);
      }
      const result = executeWql(m, p.string('Query', true)!);
      if (result.kind === 'classes') {
        const options = { localOnly: false, includeQualifiers: true, includeClassOrigin: false, propertyList: null };
        return result.classes
          .map((cls) =>
            element(
              'VALUE.OBJECTWITHPATH',
              [],
              element('CLASSPATH', [], encodeNamespacePath(c) + element('CLASSNAME', [['NAME', cls.name]])) + encodeClass(cls, options),
            ),
          )
          .join('');
      }
      return result.rows.map((r) => element('VALUE.OBJECTWITHPATH', [], encodeInstancePath(r.path, c) + encodeInstance(r.instance, c))).join('');
    },
  },
};

function associatorFilter(p: IntrinsicParams) {
  return { assocClass: p.className('AssocClass'), resultClass: p.className('ResultClass'), role: p.string('Role'), resultRole: p.string('ResultRole') };
}

function referenceFilter(p: IntrinsicParams) {
  return { resultClass: p.className('ResultClass'), role: p.string('Role') };
}

/** Run one intrinsic operation; returns the IRETURNVALUE content. Throws CimError. */
export function runIntrinsic(manager: CimObjectManager, method: string, params: readonly NamedParam[], context: PathContext): string {
  const name = Object.keys(IntrinsicOperations).find((k) => k.toLowerCase() === method.toLowerCase());
  if (!name) throw new CimError('CIM_ERR_NOT_SUPPORTED', `intrinsic method ${method} is not supported`);
  const spec = IntrinsicOperations[name]!;
  return spec.run(manager, new IntrinsicParams(name, params, spec.params), context);
}
