import { describe, expect, it } from 'vitest';
import { parseWql } from '../../root-partition/management/wql/parser.ts';
import { WqlSyntaxError } from '../../root-partition/management/wql/syntax-error.ts';

const prop = (...path: string[]) => ({ kind: 'property', path });
const lit = (value: unknown) => ({ kind: 'literal', value });

function syntaxError(text: string): WqlSyntaxError {
  try {
    parseWql(text);
  } catch (e) {
    if (e instanceof WqlSyntaxError) return e;
    throw e;
  }
  throw new Error(`no syntax error for ${text}`);
}

describe('WQL SELECT', () => {
  it('parses * and a projection', () => {
    expect(parseWql('SELECT * FROM Msvm_ComputerSystem')).toEqual({ kind: 'select', properties: null, className: 'Msvm_ComputerSystem', where: null });
    expect(parseWql('select Name, EnabledState from Msvm_ComputerSystem')).toEqual({
      kind: 'select',
      properties: ['Name', 'EnabledState'],
      className: 'Msvm_ComputerSystem',
      where: null,
    });
  });

  it('parses every comparison operator, != as <>', () => {
    for (const op of ['=', '<>', '<', '>', '<=', '>=']) {
      expect(parseWql(`SELECT * FROM C WHERE EnabledState ${op} 2`)).toMatchObject({
        where: { kind: 'compare', operator: op, left: prop('EnabledState'), right: lit(2) },
      });
    }
    expect(parseWql('SELECT * FROM C WHERE A != 2')).toMatchObject({ where: { kind: 'compare', operator: '<>', left: prop('A'), right: lit(2) } });
  });

  it('takes strings in either quote, with doubled and backslash escapes', () => {
    expect(parseWql(`SELECT * FROM C WHERE Description = "Microsoft Virtual Machine"`)).toMatchObject({
      where: { right: lit('Microsoft Virtual Machine') },
    });
    expect(parseWql(`SELECT * FROM C WHERE N = 'it''s' OR N = 'a\\'b'`)).toMatchObject({
      where: { kind: 'or', left: { right: lit("it's") }, right: { right: lit("a'b") } },
    });
  });

  it('gives NOT over AND over OR, parentheses first', () => {
    expect(parseWql('SELECT * FROM C WHERE A = 1 OR B = 2 AND NOT C = 3')).toEqual({
      kind: 'select',
      properties: null,
      className: 'C',
      where: {
        kind: 'or',
        left: { kind: 'compare', operator: '=', left: prop('A'), right: lit(1) },
        right: {
          kind: 'and',
          left: { kind: 'compare', operator: '=', left: prop('B'), right: lit(2) },
          right: { kind: 'not', operand: { kind: 'compare', operator: '=', left: prop('C'), right: lit(3) } },
        },
      },
    });
    expect(parseWql('SELECT * FROM C WHERE (A = 1 OR B = 2) AND C = 3')).toMatchObject({
      where: { kind: 'and', left: { kind: 'or' }, right: { kind: 'compare' } },
    });
  });

  it('parses LIKE, NOT LIKE, IS [NOT] NULL, ISA, literals TRUE FALSE NULL and negative/real numbers', () => {
    expect(parseWql(`SELECT * FROM Msvm_ProcessorSettingData WHERE InstanceID LIKE 'Microsoft:Definition%Maximum'`)).toMatchObject({
      where: { kind: 'like', operand: prop('InstanceID'), pattern: 'Microsoft:Definition%Maximum', negated: false },
    });
    expect(parseWql(`SELECT * FROM C WHERE N NOT LIKE 'a_'`)).toMatchObject({ where: { kind: 'like', negated: true } });
    expect(parseWql('SELECT * FROM C WHERE ProcessID IS NULL')).toMatchObject({ where: { kind: 'isNull', negated: false } });
    expect(parseWql('SELECT * FROM C WHERE ProcessID IS NOT NULL')).toMatchObject({ where: { kind: 'isNull', negated: true } });
    expect(parseWql(`SELECT * FROM C WHERE Obj ISA 'CIM_System'`)).toMatchObject({ where: { kind: 'isa', operand: prop('Obj'), className: 'CIM_System' } });
    expect(parseWql('SELECT * FROM C WHERE A = TRUE AND B = false AND C = NULL AND D = -5 AND E = 1.5e3')).toMatchObject({
      where: {
        left: { left: { left: { left: { right: lit(true) }, right: { right: lit(false) } }, right: { right: lit(null) } }, right: { right: lit(-5) } },
        right: { right: lit(1500) },
      },
    });
  });
});

describe('WQL event queries', () => {
  it('parses WITHIN and conditions on TargetInstance and PreviousInstance', () => {
    const q = parseWql(
      `SELECT * FROM __InstanceModificationEvent WITHIN 2 WHERE TargetInstance ISA 'Msvm_ComputerSystem' AND TargetInstance.EnabledState <> PreviousInstance.EnabledState`,
    );
    expect(q).toEqual({
      kind: 'event',
      properties: null,
      eventClass: '__InstanceModificationEvent',
      within: 2,
      where: {
        kind: 'and',
        left: { kind: 'isa', operand: prop('TargetInstance'), className: 'Msvm_ComputerSystem' },
        right: { kind: 'compare', operator: '<>', left: prop('TargetInstance', 'EnabledState'), right: prop('PreviousInstance', 'EnabledState') },
      },
    });
  });

  it('recognises all four intrinsic event classes, case-insensitively', () => {
    for (const c of ['__InstanceCreationEvent', '__InstanceModificationEvent', '__InstanceDeletionEvent', '__InstanceOperationEvent']) {
      expect(parseWql(`SELECT * FROM ${c.toLowerCase()} WITHIN 0.5`)).toMatchObject({ kind: 'event', eventClass: c, within: 0.5 });
    }
  });
});

describe('WQL ASSOCIATORS OF / REFERENCES OF', () => {
  it('parses the path and keywords not joined by AND', () => {
    const q = parseWql(
      `ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName='Msvm_ComputerSystem',Name='6D1F'} WHERE AssocClass = Msvm_SettingsDefineState ResultClass = Msvm_VirtualSystemSettingData Role = ManagedElement ResultRole = SettingData`,
    );
    expect(q).toEqual({
      kind: 'associators',
      objectPath: "Msvm_ComputerSystem.CreationClassName='Msvm_ComputerSystem',Name='6D1F'",
      assocClass: 'Msvm_SettingsDefineState',
      resultClass: 'Msvm_VirtualSystemSettingData',
      role: 'ManagedElement',
      resultRole: 'SettingData',
      requiredQualifier: null,
      requiredAssocQualifier: null,
      classDefsOnly: false,
      keysOnly: false,
    });
    expect(
      parseWql('associators of {C.K="}"} where ClassDefsOnly RequiredAssocQualifier = Association KeysOnly RequiredQualifier = Description'),
    ).toMatchObject({
      objectPath: 'C.K="}"',
      classDefsOnly: true,
      keysOnly: true,
      requiredAssocQualifier: 'Association',
      requiredQualifier: 'Description',
    });
    expect(parseWql('ASSOCIATORS OF {C.K=1}')).toMatchObject({ kind: 'associators', assocClass: null });
  });

  it('parses REFERENCES OF with its keywords', () => {
    expect(parseWql(`REFERENCES OF {Msvm_ComputerSystem.Name="x"} WHERE ResultClass = Msvm_SettingsDefineState Role = ManagedElement KeysOnly`)).toEqual({
      kind: 'references',
      objectPath: 'Msvm_ComputerSystem.Name="x"',
      resultClass: 'Msvm_SettingsDefineState',
      role: 'ManagedElement',
      requiredQualifier: null,
      classDefsOnly: false,
      keysOnly: true,
    });
  });
});

describe('WQL syntax errors carry the position', () => {
  it.each([
    ['SELECT FROM C', 7, 'expected property name'],
    ['SELECT * C', 9, 'expected FROM'],
    ['SELECT * FROM C WHERE', 21, 'expected property name, found end of query'],
    ['SELECT * FROM C WHERE A = ', 26, 'expected property name'],
    ["SELECT * FROM C WHERE A = 'open", 26, 'unterminated string'],
    ['SELECT * FROM C WHERE A ~ 1', 24, 'unexpected character'],
    ['SELECT * FROM C WHERE A 1', 24, 'expected a comparison operator'],
    ['SELECT * FROM C WHERE (A = 1', 28, 'expected )'],
    ['SELECT * FROM C WHERE A LIKE 5', 29, 'LIKE needs a string pattern'],
    ['SELECT * FROM C WHERE A IS 5', 27, 'expected NULL'],
    ['SELECT * FROM C WITHIN 5', 14, 'WITHIN applies only to intrinsic event queries'],
    ['SELECT * FROM __InstanceCreationEvent WITHIN x', 45, 'WITHIN needs a positive number'],
    ['SELECT * FROM C GROUP BY A', 16, 'GROUP is not supported'],
    ['SELECT * FROM C extra', 16, 'expected end of query'],
    ['ASSOCIATORS {C.K=1}', 12, 'expected OF'],
    ['ASSOCIATORS OF C.K=1', 15, 'expected {object path}'],
    ['ASSOCIATORS OF {C.K=1', 15, 'unterminated {object path}'],
    ['ASSOCIATORS OF {C.K=1} WHERE Bogus = X', 29, 'unknown keyword Bogus'],
    ['ASSOCIATORS OF {C.K=1} WHERE AssocClass = A AND ResultClass = B', 44, 'unknown keyword AND'],
    ['ASSOCIATORS OF {C.K=1} WHERE Role = A Role = B', 38, 'Role given twice'],
    ['REFERENCES OF {C.K=1} WHERE AssocClass = A', 28, 'unknown keyword AssocClass'],
    ['DELETE FROM C', 0, 'expected SELECT, ASSOCIATORS OF or REFERENCES OF'],
    ['', 0, 'expected SELECT'],
  ])('%s', (text, position, message) => {
    const e = syntaxError(text);
    expect(e.position).toBe(position);
    expect(e.message).toContain(message);
    expect(e.message).toContain(`position ${position}`);
  });
});
