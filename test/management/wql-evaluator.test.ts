import { describe, expect, it } from 'vitest';
import { CimError } from '../../root-partition/management/cim/errors.ts';
import { instanceContext } from '../../root-partition/management/wql/contexts.ts';
import { evaluate } from '../../root-partition/management/wql/evaluator.ts';
import { LikePattern } from '../../root-partition/management/wql/like-pattern.ts';
import { parseWql } from '../../root-partition/management/wql/parser.ts';
import { executeWql } from '../../root-partition/management/wql/query-executor.ts';
import type { WqlSelectQuery } from '../../root-partition/management/wql/ast.ts';
import { createFixture, VM2_NAME, VM_NAME, VSSD_ID } from './fixtures.ts';

const f = createFixture();
const vm = f.manager.getInstance({
  className: 'Msvm_ComputerSystem',
  keys: [
    { name: 'CreationClassName', value: 'Msvm_ComputerSystem' },
    { name: 'Name', value: VM_NAME },
  ],
});

/** Evaluate a WHERE clause against the VM (EnabledState 3, ProcessID NULL, ElementName 'web & db'). */
function onVm(where: string): boolean | null {
  const q = parseWql(`SELECT * FROM Msvm_ComputerSystem WHERE ${where}`) as WqlSelectQuery;
  return evaluate(q.where!, instanceContext(vm, f.schema));
}

function names(query: string): string[] {
  const r = executeWql(f.manager, query);
  if (r.kind !== 'instances') throw new Error('expected instances');
  return r.rows.map((row) => String(row.instance.get('Name') ?? row.instance.get('InstanceID')));
}

describe('WQL evaluation against an instance', () => {
  it.each([
    ['EnabledState = 3', true],
    ['EnabledState = 2', false],
    ['EnabledState != 2', true],
    ['EnabledState <> 3', false],
    ['EnabledState < 4', true],
    ['EnabledState < 3', false],
    ['EnabledState > 2', true],
    ['EnabledState > 3', false],
    ['EnabledState <= 3', true],
    ['EnabledState <= 2', false],
    ['EnabledState >= 3', true],
    ['EnabledState >= 4', false],
    ["EnabledState = '3'", true],
    ["ElementName = 'WEB & DB'", true],
    ["ElementName < 'x'", true],
    ['OnTimeInMilliseconds = 0', true],
    ['HealthState = 5 AND EnabledState = 3', true],
    ['HealthState = 5 AND EnabledState = 2', false],
    ['HealthState = 1 OR EnabledState = 3', true],
    ['HealthState = 1 OR EnabledState = 2', false],
    ['NOT EnabledState = 2', true],
    ['NOT EnabledState = 3', false],
    ["ElementName LIKE 'web%'", true],
    ["ElementName LIKE 'WEB _ DB'", true],
    ["ElementName LIKE 'web_db'", false],
    ["ElementName LIKE 'web _ db'", true],
    ["ElementName LIKE '[uvw]eb%'", true],
    ["ElementName LIKE '[^w]eb%'", false],
    ["ElementName LIKE '[a-z]eb & d[a-c]'", true],
    ["ElementName NOT LIKE 'web%'", false],
    ['ProcessID IS NULL', true],
    ['ProcessID IS NOT NULL', false],
    ['ElementName IS NOT NULL', true],
    ["__CLASS = 'msvm_computersystem'", true],
  ])('%s → %s', (where, expected) => {
    expect(onVm(where)).toBe(expected);
  });

  it('uses three-valued logic: comparisons with NULL are unknown', () => {
    expect(onVm('ProcessID = 1')).toBeNull();
    expect(onVm('ProcessID <> 1')).toBeNull();
    expect(onVm('NOT ProcessID = 1')).toBeNull();
    expect(onVm('ProcessID = 1 OR EnabledState = 3')).toBe(true);
    expect(onVm('ProcessID = 1 AND EnabledState = 2')).toBe(false);
    expect(onVm('ProcessID = 1 AND EnabledState = 3')).toBeNull();
    expect(onVm('EnabledState = NULL')).toBeNull();
  });

  it('takes regular-expression characters in LIKE patterns literally', () => {
    expect(new LikePattern('a.b%').matches('a.bcd')).toBe(true);
    expect(new LikePattern('a.b%').matches('axbcd')).toBe(false);
    expect(new LikePattern('(x)+_').matches('(X)+y')).toBe(true);
    expect(new LikePattern('[ab').matches('[ab')).toBe(true);
  });
});

describe('WQL SELECT through the object manager', () => {
  it('filters and projects Msvm_ComputerSystem as libvirt queries it', () => {
    expect(names(`SELECT * FROM Msvm_ComputerSystem WHERE Description = "Microsoft Virtual Machine"`)).toEqual([VM_NAME, VM2_NAME]);
    expect(names(`SELECT * FROM Msvm_ComputerSystem WHERE Description = "Microsoft Virtual Machine" AND (EnabledState = 2 OR EnabledState = 9)`)).toEqual([
      VM2_NAME,
    ]);
    const r = executeWql(f.manager, 'SELECT Name, EnabledState FROM Msvm_ComputerSystem WHERE ProcessID = 4242');
    expect(r.kind === 'instances' && r.rows.map((row) => row.instance.properties.map((p) => [p.name, p.value]))).toEqual([
      [
        ['Name', VM2_NAME],
        ['EnabledState', 2],
      ],
    ]);
    expect(r.kind === 'instances' && r.rows[0]!.path.keys).toEqual([
      { name: 'CreationClassName', value: 'Msvm_ComputerSystem' },
      { name: 'Name', value: VM2_NAME },
    ]);
  });

  it('finds host maximums with LIKE and enumerates subclasses through a parent class', () => {
    expect(names(`SELECT * FROM Msvm_ProcessorSettingData WHERE InstanceID LIKE 'Microsoft:Definition%Maximum'`)).toEqual([
      'Microsoft:Definition\\B637F346-6A0E-4DEC-AF52-BD70CB80A21D\\Maximum',
    ]);
    expect(names('SELECT * FROM CIM_ResourceAllocationSettingData WHERE ResourceType = 4')).toEqual([
      `Microsoft:${VM_NAME}\\4764334D-E001-4176-82EE-5594EC9B530E`,
    ]);
  });

  it('compares reference properties with path strings and tests them with ISA', () => {
    const vmRef = `Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${VM_NAME}"`;
    const r = executeWql(f.manager, `SELECT * FROM Msvm_SettingsDefineState WHERE ManagedElement = '${vmRef}' AND SettingData ISA 'CIM_SettingData'`);
    expect(r.kind === 'instances' && r.rows.map((row) => row.path.className)).toEqual(['Msvm_SettingsDefineState']);
    const none = executeWql(f.manager, `SELECT * FROM Msvm_SettingsDefineState WHERE ManagedElement <> '${vmRef}' OR SettingData ISA 'CIM_System'`);
    expect(none.kind === 'instances' && none.rows).toEqual([]);
  });

  it('reports unknown classes, unknown properties and syntax errors as CIM errors', () => {
    const code = (q: string) => {
      try {
        executeWql(f.manager, q);
      } catch (e) {
        return e instanceof CimError ? e.code : -1;
      }
      return 0;
    };
    expect(code('SELECT * FROM Msvm_Nothing')).toBe(5);
    expect(code('SELECT Bogus FROM Msvm_ComputerSystem')).toBe(15);
    expect(code('SELECT * FROM Msvm_ComputerSystem WHERE Bogus = 1')).toBe(15);
    expect(code('SELECT * FROM Msvm_ComputerSystem WHERE')).toBe(15);
    expect(code('SELECT * FROM __InstanceCreationEvent')).toBe(15);
    expect(code('ASSOCIATORS OF {not a path!}')).toBe(15);
  });
});

describe('WQL ASSOCIATORS OF / REFERENCES OF', () => {
  const vmPath = `{Msvm_ComputerSystem.CreationClassName='Msvm_ComputerSystem',Name='${VM_NAME}'}`;

  it('follows every association of the VM, and filters by AssocClass, ResultClass, Role, ResultRole', () => {
    const r = executeWql(f.manager, `ASSOCIATORS OF ${vmPath}`);
    expect(r.kind === 'instances' && r.rows.map((row) => row.path.className).sort()).toEqual(['Msvm_HeartbeatComponent', 'Msvm_VirtualSystemSettingData']);
    expect(
      names(
        `ASSOCIATORS OF ${vmPath} WHERE AssocClass = Msvm_SettingsDefineState ResultClass = CIM_SettingData Role = ManagedElement ResultRole = SettingData`,
      ),
    ).toEqual([VSSD_ID]);
    expect(names(`ASSOCIATORS OF ${vmPath} WHERE Role = SettingData`)).toEqual([]);
    expect(names(`ASSOCIATORS OF ${vmPath} WHERE ResultClass = Msvm_ComputerSystem`)).toEqual([]);
    expect(
      names(`ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID="${VSSD_ID}"} WHERE AssocClass = Msvm_VirtualSystemSettingDataComponent`),
    ).toHaveLength(2);
  });

  it('answers ClassDefsOnly with classes and KeysOnly with key properties only', () => {
    const classes = executeWql(f.manager, `ASSOCIATORS OF ${vmPath} WHERE ClassDefsOnly`);
    expect(classes.kind === 'classes' && classes.classes.map((c) => c.name).sort()).toEqual(['Msvm_HeartbeatComponent', 'Msvm_VirtualSystemSettingData']);
    const keys = executeWql(f.manager, `ASSOCIATORS OF ${vmPath} WHERE ResultClass = Msvm_VirtualSystemSettingData KeysOnly`);
    expect(keys.kind === 'instances' && keys.rows[0]!.instance.properties.map((p) => p.name)).toEqual(['InstanceID']);
  });

  it('honours RequiredAssocQualifier and RequiredQualifier against the qualifiers the schema states', () => {
    expect(names(`ASSOCIATORS OF ${vmPath} WHERE RequiredAssocQualifier = Association ResultClass = Msvm_VirtualSystemSettingData`)).toEqual([VSSD_ID]);
    expect(names(`ASSOCIATORS OF ${vmPath} WHERE RequiredAssocQualifier = Abstract`)).toEqual([]);
    expect(names(`ASSOCIATORS OF ${vmPath} WHERE RequiredQualifier = Description`)).toEqual([]);
  });

  it('lists references, with ResultClass naming the association class', () => {
    const all = executeWql(f.manager, `REFERENCES OF ${vmPath}`);
    expect(all.kind === 'instances' && all.rows.map((r) => r.path.className).sort()).toEqual(['Msvm_SettingsDefineState', 'Msvm_SystemDevice']);
    const sds = executeWql(f.manager, `REFERENCES OF ${vmPath} WHERE ResultClass = CIM_SettingsDefineState Role = ManagedElement`);
    expect(sds.kind === 'instances' && sds.rows.map((r) => r.path.className)).toEqual(['Msvm_SettingsDefineState']);
    const none = executeWql(f.manager, `REFERENCES OF ${vmPath} WHERE Role = SettingData`);
    expect(none.kind === 'instances' && none.rows).toEqual([]);
  });
});
