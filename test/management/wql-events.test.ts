import { describe, expect, it } from 'vitest';
import { CimError } from '../../root-partition/management/cim/errors.ts';
import type { CimInstanceEvent } from '../../root-partition/management/cim/provider.ts';
import { compileEventFilter } from '../../root-partition/management/wql/event-filter.ts';
import { subscribeWql } from '../../root-partition/management/wql/query-executor.ts';
import { createFixture, VM_NAME, VM_PATH } from './fixtures.ts';

const STATE_CHANGE = `SELECT * FROM __InstanceModificationEvent WITHIN 2 WHERE TargetInstance ISA 'Msvm_ComputerSystem' AND TargetInstance.EnabledState <> PreviousInstance.EnabledState`;

describe('intrinsic event filters', () => {
  const { schema, manager } = createFixture();
  const vm = manager.getInstance(VM_PATH);
  const running = vm.with({ EnabledState: 2 });
  const renamed = vm.with({ ElementName: 'renamed' });
  const vssd = manager.enumerateInstances('Msvm_VirtualSystemSettingData')[0]!;
  const at = new Date(0);
  const modification = (target = running, previous = vm): CimInstanceEvent => ({ kind: 'modification', target, previous, time: at });

  it('matches a state change of a computer system, not a rename or another class', () => {
    const filter = compileEventFilter(STATE_CHANGE, schema);
    expect(filter.within).toBe(2);
    expect(filter.matches(modification())).toBe(true);
    expect(filter.matches(modification(renamed))).toBe(false);
    expect(filter.matches(modification(vssd.with({ ElementName: 'x' }), vssd))).toBe(false);
    expect(filter.matches({ kind: 'creation', target: running, time: at })).toBe(false);
  });

  it('ISA matches subclasses of the named class', () => {
    const filter = compileEventFilter(`SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'CIM_System'`, schema);
    expect(filter.matches(modification())).toBe(true);
    expect(filter.matches(modification(vssd, vssd))).toBe(false);
  });

  it('selects by event class; __InstanceOperationEvent takes all three and exposes __CLASS', () => {
    const creation: CimInstanceEvent = { kind: 'creation', target: vm, time: at };
    const deletion: CimInstanceEvent = { kind: 'deletion', target: vm, time: at };
    const created = compileEventFilter(`SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Msvm_ComputerSystem'`, schema);
    expect([created.matches(creation), created.matches(deletion), created.matches(modification())]).toEqual([true, false, false]);
    const deleted = compileEventFilter(`SELECT * FROM __InstanceDeletionEvent WHERE TargetInstance.Name = '${VM_NAME}'`, schema);
    expect([deleted.matches(creation), deleted.matches(deletion)]).toEqual([false, true]);
    const any = compileEventFilter(`SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'Msvm_ComputerSystem'`, schema);
    expect([any.matches(creation), any.matches(deletion), any.matches(modification())]).toEqual([true, true, true]);
    const notDeletion = compileEventFilter(`SELECT * FROM __InstanceOperationEvent WHERE __CLASS <> '__InstanceDeletionEvent'`, schema);
    expect([notDeletion.matches(creation), notDeletion.matches(deletion)]).toEqual([true, false]);
  });

  it('treats PreviousInstance as NULL outside modification events', () => {
    const f = compileEventFilter('SELECT * FROM __InstanceOperationEvent WHERE PreviousInstance IS NULL', schema);
    expect(f.matches({ kind: 'creation', target: vm, time: at })).toBe(true);
    expect(f.matches(modification())).toBe(false);
    const g = compileEventFilter('SELECT * FROM __InstanceOperationEvent WHERE PreviousInstance.EnabledState = 3', schema);
    expect(g.matches({ kind: 'creation', target: vm, time: at })).toBe(false);
    expect(g.matches(modification())).toBe(true);
  });

  it('rejects non-event queries, syntax errors and unknown ISA classes with CIM_ERR_INVALID_QUERY / INVALID_CLASS', () => {
    const code = (q: string) => {
      try {
        compileEventFilter(q, schema);
        return 0;
      } catch (e) {
        return e instanceof CimError ? e.code : -1;
      }
    };
    expect(code('SELECT * FROM Msvm_ComputerSystem')).toBe(15);
    expect(code('SELECT * FROM __InstanceModificationEvent WITHIN')).toBe(15);
    expect(code(`SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'Msvm_Nope'`)).toBe(5);
  });
});

describe('pushed events through subscribeWql', () => {
  it('delivers matching provider changes as they happen and stops after unsubscribe', async () => {
    const { provider, manager } = createFixture();
    const seen: string[] = [];
    const unsubscribe = subscribeWql(manager, STATE_CHANGE, (e) =>
      seen.push(`${e.kind}:${String(e.target.get('EnabledState'))}:${String(e.previous?.get('EnabledState'))}`),
    );
    const created: string[] = [];
    const unsubscribeCreated = subscribeWql(manager, `SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'CIM_ConcreteJob'`, (e) =>
      created.push(String(e.target.get('InstanceID'))),
    );
    await manager.invokeMethod(VM_PATH, 'RequestStateChange', { RequestedState: 2 });
    provider.update(manager.getInstance(VM_PATH).with({ ElementName: 'renamed' }));
    expect(seen).toEqual(['modification:2:3']);
    expect(created).toEqual(['7F2A0C11-1111-4222-8333-944455566677']);
    unsubscribe();
    unsubscribeCreated();
    await manager.invokeMethod(VM_PATH, 'RequestStateChange', { RequestedState: 3 });
    expect(seen).toEqual(['modification:2:3']);
    expect(created).toHaveLength(1);
  });
});
