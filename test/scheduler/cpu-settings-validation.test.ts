import { describe, expect, it } from 'vitest';
import { definitionProblems, newDefinition } from '../../root-partition/vmms/vm-definition.ts';
import { cpuSettingsOf } from '../../root-partition/vmms/host-cpu-scheduler.ts';
import { computeChange, SettingRefused } from '../../root-partition/management/provider/resource-changes.ts';
import { createVirtualizationSchema } from '../../root-partition/management/cim/schema.ts';

const base = { name: 'v', memoryBytes: 16 << 20, imagePath: '/x.wasm' };
const schema = createVirtualizationSchema();

describe('CPU settings: definitions and Msvm_ProcessorSettingData', () => {
  it("keeps valid settings and turns them into the allocation's fractions", () => {
    const d = newDefinition({ ...base, cpuReserve: 12.5, cpuMaximum: 60, cpuWeight: 300 });
    expect(cpuSettingsOf(d)).toEqual({ reserve: 0.125, limit: 0.6, weight: 300 });
    expect(cpuSettingsOf(newDefinition(base))).toEqual({ reserve: 0, limit: 1, weight: 100 });
  });

  it('refuses settings out of range, each with its field', () => {
    const d = { ...newDefinition(base) };
    expect(definitionProblems({ ...d, cpuReserve: 150 })).toEqual([
      'cpuReserve: must be a percentage from 0 to 100',
      'cpuReserve: 150% is above the maximum of 100%',
    ]);
    expect(definitionProblems({ ...d, cpuMaximum: 0 })).toEqual(['cpuMaximum: must be a percentage above 0 to 100']);
    expect(definitionProblems({ ...d, cpuWeight: 0 })).toEqual(['cpuWeight: must be between 1 and 10000']);
    expect(definitionProblems({ ...d, cpuReserve: 0.0001 })).toEqual(['cpuReserve: must be a multiple of 0.001 (thousandths of a percent)']);
    expect(definitionProblems({ ...d, cpuReserve: 50, cpuMaximum: 40 })).toEqual(['cpuReserve: 50% is above the maximum of 40%']);
  });

  it('reads Reservation and Limit in thousandths of a percent, and Weight; VirtualQuantity may be left out', () => {
    const p = (values: Record<string, unknown>) => schema.createInstance('Msvm_ProcessorSettingData', { ResourceType: 3, ...values });
    expect(computeChange(p({ Reservation: 12_500n, Limit: 60_000n, Weight: 300 }))).toEqual({ cpuReserve: 12.5, cpuMaximum: 60, cpuWeight: 300 });
    expect(computeChange(p({ VirtualQuantity: 2n }))).toEqual({ vpCount: 2 });
    expect(() => computeChange(p({ Limit: 100_001n }))).toThrow(SettingRefused);
    expect(() => computeChange(p({ Limit: 0n }))).toThrow(/Limit 0 would never let the VM run/);
    expect(() => computeChange(p({ Weight: 10_001 }))).toThrow(/Weight 10001 must be 1..10000/);
  });
});
