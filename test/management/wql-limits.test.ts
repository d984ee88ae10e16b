import { describe, expect, it } from 'vitest';
import { CimError } from '../../root-partition/management/cim/errors.ts';
import { handleCimXml } from '../../root-partition/management/cimxml/request-handler.ts';
import { compileEventFilter } from '../../root-partition/management/wql/event-filter.ts';
import { MAX_WQL_NESTING } from '../../root-partition/management/wql/parser.ts';
import { DEFAULT_QUERY_STEP_LIMIT } from '../../root-partition/management/wql/query-budget.ts';
import { executeWql } from '../../root-partition/management/wql/query-executor.ts';
import { createFixture } from './fixtures.ts';
import { NS, wbemcliBody } from './cimxml-reference.ts';

function cimError(run: () => unknown): CimError {
  try {
    run();
  } catch (e) {
    if (e instanceof CimError) return e;
    throw e;
  }
  throw new Error('expected a CimError');
}

/** The fixture plus VMs whose ElementName is 60 characters of 'a', the value that froze the service. */
function withLongNames(count: number) {
  const f = createFixture();
  for (let i = 0; i < count; i++) {
    f.provider.add(
      f.schema.createInstance('Msvm_ComputerSystem', {
        CreationClassName: 'Msvm_ComputerSystem',
        Name: `LONG-${i}`,
        ElementName: 'a'.repeat(60),
        Description: 'Microsoft Virtual Machine',
        EnabledState: 3,
      }),
    );
  }
  return f;
}

const rows = (r: ReturnType<typeof executeWql>) => (r.kind === 'instances' ? r.rows.map((x) => String(x.instance.get('Name'))) : []);

describe('WQL nesting and length bounds', () => {
  it(`refuses NOT and parentheses nested deeper than ${MAX_WQL_NESTING} with CIM_ERR_INVALID_QUERY, not a stack overflow`, () => {
    const { manager } = createFixture();
    for (const where of [
      `${'NOT '.repeat(5000)}EnabledState = 2`,
      `${'('.repeat(5000)}EnabledState = 2${')'.repeat(5000)}`,
      `${'NOT ('.repeat(2500)}EnabledState = 2${')'.repeat(2500)}`,
    ]) {
      const e = cimError(() => executeWql(manager, `SELECT * FROM Msvm_ComputerSystem WHERE ${where}`));
      expect(e.statusName).toBe('CIM_ERR_INVALID_QUERY');
      expect(e.message).toMatch(/nested more than 64 deep/);
    }
    const e = cimError(() =>
      compileEventFilter(`SELECT * FROM __InstanceCreationEvent WHERE ${'NOT '.repeat(5000)}TargetInstance ISA 'Msvm_ComputerSystem'`, manager.schema),
    );
    expect(e.statusName).toBe('CIM_ERR_INVALID_QUERY');
  });

  it(`accepts exactly ${MAX_WQL_NESTING} levels`, () => {
    const { manager } = createFixture();
    const nested = (n: number) => `SELECT * FROM Msvm_ComputerSystem WHERE ${'NOT '.repeat(n)}EnabledState = 2`;
    expect(rows(executeWql(manager, nested(MAX_WQL_NESTING)))).toHaveLength(2);
    expect(cimError(() => executeWql(manager, nested(MAX_WQL_NESTING + 1))).statusName).toBe('CIM_ERR_INVALID_QUERY');
    const parens = `SELECT * FROM Msvm_ComputerSystem WHERE ${'('.repeat(MAX_WQL_NESTING)}EnabledState = 2${')'.repeat(MAX_WQL_NESTING)}`;
    expect(rows(executeWql(manager, parens))).toHaveLength(2);
  });

  it('evaluates a chain of 20 000 OR conditions (a long generated query) without deep recursion', () => {
    const { manager } = createFixture();
    const names = Array.from({ length: 20_000 }, (_, i) => `Name = 'vm-${i}'`).join(' OR ');
    const generous = { stepLimit: 1e9 };
    expect(rows(executeWql(manager, `SELECT * FROM Msvm_ComputerSystem WHERE ${names} OR Name = 'HOST1'`, generous))).toEqual(['HOST1']);
    const ands = Array.from({ length: 20_000 }, () => 'EnabledState = 3').join(' AND ');
    expect(rows(executeWql(manager, `SELECT * FROM Msvm_ComputerSystem WHERE ${ands}`, generous))).toHaveLength(1);
  });
});

describe('WQL work bound', () => {
  it("answers LIKE '%a%a%a%a%a%a%a%a%b' against 60-character values at once", () => {
    const { manager } = withLongNames(50);
    const started = performance.now();
    const r = executeWql(manager, "SELECT * FROM Msvm_ComputerSystem WHERE ElementName LIKE '%a%a%a%a%a%a%a%a%b'");
    expect(rows(r)).toEqual([]);
    expect(rows(executeWql(manager, "SELECT * FROM Msvm_ComputerSystem WHERE ElementName LIKE '%a%a%a%a%a%a%a%a%a'"))).toHaveLength(50);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('stops a query that needs more steps than its budget with CIM_ERR_SERVER_LIMITS_EXCEEDED', () => {
    const { manager } = withLongNames(20);
    const query = "SELECT * FROM Msvm_ComputerSystem WHERE ElementName LIKE '%a%a%a%a%a%a%a%a%b'";
    // Each 60-character value costs 130 LIKE steps (60 folded, 70 compared) plus one for the
    // clause; the fixture's three other systems about 10 each: about 2650 in all.
    expect(rows(executeWql(manager, query, { stepLimit: 3_000 }))).toEqual([]);
    const e = cimError(() => executeWql(manager, query, { stepLimit: 2_000 }));
    expect([e.statusName, e.code]).toEqual(['CIM_ERR_SERVER_LIMITS_EXCEEDED', 27]);
    expect(e.message).toMatch(/query too expensive: it needs more than 2000 evaluation steps/);
  });

  it('bounds the default: a long pattern against long values over many rows is refused, not run for minutes', () => {
    const f = createFixture();
    for (let i = 0; i < 100; i++) {
      f.provider.add(
        f.schema.createInstance('Msvm_ComputerSystem', { CreationClassName: 'Msvm_ComputerSystem', Name: `BIG-${i}`, ElementName: 'a'.repeat(20_000) }),
      );
    }
    // Each of the 20 000 places the % can stop matches 1000 a's before failing at b: 2e7 steps a row.
    const query = `SELECT * FROM Msvm_ComputerSystem WHERE ElementName LIKE '%${'a'.repeat(1000)}b'`;
    const started = performance.now();
    const e = cimError(() => executeWql(f.manager, query));
    expect(e.statusName).toBe('CIM_ERR_SERVER_LIMITS_EXCEEDED');
    expect(e.message).toContain(String(DEFAULT_QUERY_STEP_LIMIT));
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('answers ERROR CODE 27 inside a 200 reply over CIM-XML', async () => {
    const f = createFixture();
    for (let i = 0; i < 100; i++) {
      f.provider.add(
        f.schema.createInstance('Msvm_ComputerSystem', { CreationClassName: 'Msvm_ComputerSystem', Name: `BIG-${i}`, ElementName: 'a'.repeat(20_000) }),
      );
    }
    const query = `SELECT * FROM Msvm_ComputerSystem WHERE ElementName LIKE '%${'a'.repeat(1000)}b'`;
    const body = wbemcliBody(
      `<IMETHODCALL NAME="ExecQuery">${NS}<IPARAMVALUE NAME="QueryLanguage"><VALUE>WQL</VALUE></IPARAMVALUE><IPARAMVALUE NAME="Query"><VALUE>${query}</VALUE></IPARAMVALUE></IMETHODCALL>`,
    );
    const r = await handleCimXml(
      f.manager,
      { cimOperation: 'MethodCall', cimMethod: 'ExecQuery', cimObject: 'root%2Fvirtualization%2Fv2', contentType: 'application/xml' },
      body,
      'HOST1',
    );
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/<ERROR CODE="27" DESCRIPTION="CIM_ERR_SERVER_LIMITS_EXCEEDED: query too expensive/);
  });
});
