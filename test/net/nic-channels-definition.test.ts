/**
 * A synthetic adapter's maxChannels in a VM definition: validated (1..64, synthetic only, in the
 * project's words) and handed to the worker's NIC configuration, which NetVsp takes as its cap.
 */
import { describe, expect, it } from 'vitest';
import { deviceConfig } from '../../root-partition/vmms/vm-device-settings.ts';
import { definitionProblems, newDefinition } from '../../root-partition/vmms/vm-definition.ts';

const d = newDefinition({ name: 'v', memoryBytes: 16 << 20, imagePath: '/x.wasm' });

describe('network adapter maxChannels in a definition', () => {
  it('takes 1..64 on a synthetic adapter and refuses anything else, naming the field', () => {
    expect(
      definitionProblems({
        ...d,
        devices: [
          { kind: 'network-adapter', maxChannels: 1 },
          { kind: 'network-adapter', maxChannels: 64 },
        ],
      }),
    ).toEqual([]);
    expect(
      definitionProblems({
        ...d,
        devices: [
          { kind: 'network-adapter', maxChannels: 0 },
          { kind: 'network-adapter', maxChannels: 65 },
          { kind: 'network-adapter', maxChannels: 2.5 },
          { kind: 'network-adapter', maxChannels: '4' },
          { kind: 'network-adapter', legacy: true, maxChannels: 2 },
        ],
      }),
    ).toEqual([
      'devices[0].maxChannels: must be an integer from 1 to 64',
      'devices[1].maxChannels: must be an integer from 1 to 64',
      'devices[2].maxChannels: must be an integer from 1 to 64',
      'devices[3].maxChannels: must be an integer from 1 to 64',
      'devices[4].maxChannels: maxChannels is for synthetic adapters (a legacy NE2000 has no VMBus channels)',
    ]);
  });

  it("reaches the worker's NIC configuration of a synthetic adapter only", () => {
    const nics = deviceConfig(d.id, [{ kind: 'network-adapter', maxChannels: 2 }, { kind: 'network-adapter' }] as { kind: string }[]).nics!;
    expect(nics.map((n) => [n.kind, n.maxChannels])).toEqual([
      ['synthetic', 2],
      ['synthetic', undefined],
    ]);
  });
});
