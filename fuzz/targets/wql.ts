/**
 * WQL (root-partition/management/wql): query text through the lexer, parser and evaluator, as
 * ExecQuery runs it over a small object set, and as an event subscription compiles it. The
 * declared refusal is CimError (CIM_ERR_INVALID_QUERY, CIM_ERR_INVALID_CLASS, …).
 */
import { CimError } from '../../root-partition/management/cim/errors.ts';
import { compileEventFilter } from '../../root-partition/management/wql/event-filter.ts';
import { executeWql } from '../../root-partition/management/wql/query-executor.ts';
import { createFixture, VM_NAME } from '../../test/management/fixtures.ts';
import { utf8, fromUtf8, type FuzzTarget } from '../engine/target.ts';

export const WQL_SEEDS = [
  'SELECT * FROM Msvm_ComputerSystem',
  "SELECT Name, ElementName FROM Msvm_ComputerSystem WHERE EnabledState = 2 AND NOT (ElementName LIKE '%d_b%' OR HealthState <> 5)",
  "SELECT * FROM Msvm_ComputerSystem WHERE ElementName LIKE '[a-c]%' AND ProcessID > 10 OR InstallDate IS NULL",
  "SELECT * FROM Msvm_VirtualSystemSettingData WHERE InstanceID = 'Microsoft:x' OR VirtualSystemType IS NOT NULL",
  `ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${VM_NAME}"} WHERE AssocClass = Msvm_SettingsDefineState ResultClass = Msvm_VirtualSystemSettingData`,
  `REFERENCES OF {Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${VM_NAME}"} WHERE ResultClass = Msvm_SettingsDefineState`,
  "SELECT * FROM __InstanceModificationEvent WITHIN 2 WHERE TargetInstance ISA 'Msvm_ComputerSystem' AND TargetInstance.EnabledState = 3",
  "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Msvm_ComputerSystem' AND PreviousInstance.Name <> 'x'",
];

export function createTarget(): FuzzTarget {
  const { manager, schema } = createFixture();
  return {
    name: 'wql',
    description: 'WQL text: lexer, parser, evaluator (ExecQuery) and event-filter compilation',
    maxInputBytes: 4096,
    dictionary: [
      'SELECT ',
      ' FROM ',
      ' WHERE ',
      ' AND ',
      ' OR ',
      'NOT ',
      ' LIKE ',
      ' IS NULL',
      ' IS NOT NULL',
      ' ISA ',
      ' WITHIN ',
      'TRUE',
      'FALSE',
      'NULL',
      'ASSOCIATORS OF ',
      'REFERENCES OF ',
      'AssocClass = ',
      'ResultClass = ',
      'ResultRole = ',
      'Role = ',
      'ClassDefsOnly',
      'KeysOnly',
      "'",
      '"',
      '(',
      ')',
      '{',
      '}',
      '%',
      '_',
      '[',
      ']',
      '^',
      '=',
      '<>',
      '<=',
      '>=',
      '.',
      ',',
      '*',
      '0x',
      '-1',
      '1e308',
      'Msvm_ComputerSystem',
      'TargetInstance',
      'PreviousInstance',
      '__InstanceModificationEvent',
      'EnabledState',
      'ElementName',
      'Name',
    ],
    seeds: () => WQL_SEEDS.map(utf8),
    run(input) {
      const text = fromUtf8(input);
      try {
        executeWql(manager, text);
      } catch (e) {
        if (!(e instanceof CimError)) throw e;
      }
      compileEventFilter(text, schema);
    },
    isExpectedError: (e) => e instanceof CimError,
  };
}
