/**
 * VM definitions (root-partition/vmms/vm-definition.ts): the JSON text of a definition file as
 * the definition store reads it, parsed and validated. The declared refusals are SyntaxError
 * from JSON.parse and DefinitionError; a definition that passes must hold what the schema
 * promises (types and ranges), else it is a bug.
 */
import { DefinitionError, MAX_VM_MEMORY_BYTES, validateDefinition } from '../../root-partition/vmms/vm-definition.ts';
import { invariant, utf8, fromUtf8, type FuzzTarget } from '../engine/target.ts';

const VALID = {
  version: 1,
  id: '6d1f3a2b-0000-4c5e-9a11-2b3c4d5e6f70',
  name: 'web',
  memoryBytes: 64 * 1024 * 1024,
  vpCount: 2,
  imagePath: '/var/lib/tsvisor/images/hello.wasm',
  cmdline: 'console=ttyS0',
  automaticStopAction: 'save',
  devices: [{ kind: 'scsi-disk', path: '/var/lib/tsvisor/disks/a.raw' }],
};

export function createTarget(): FuzzTarget {
  return {
    name: 'vm-definition',
    description: 'VM definition files: JSON parse and schema validation',
    maxInputBytes: 8192,
    dictionary: [
      '"version"',
      '"id"',
      '"name"',
      '"memoryBytes"',
      '"vpCount"',
      '"imagePath"',
      '"cmdline"',
      '"automaticStopAction"',
      '"devices"',
      '"kind"',
      '"path"',
      '"__proto__"',
      '"constructor"',
      'null',
      'true',
      '1e309',
      '-0',
      '4294967296',
      '[]',
      '{}',
      '"turn-off"',
      '"ide-disk"',
      '"scsi-disk"',
      '"\\u0000"',
      '"/"',
    ],
    seeds: () => [utf8(JSON.stringify(VALID)), utf8(JSON.stringify({ ...VALID, devices: [], automaticStopAction: 'turn-off', vpCount: 1 }, null, 2))],
    run(input) {
      const def = validateDefinition(JSON.parse(fromUtf8(input)), 'fuzz.json');
      invariant(Number.isInteger(def.memoryBytes) && def.memoryBytes > 0 && def.memoryBytes <= MAX_VM_MEMORY_BYTES, 'an accepted memoryBytes out of range');
      invariant(Number.isInteger(def.vpCount) && def.vpCount >= 1, 'an accepted vpCount out of range');
      invariant(
        typeof def.name === 'string' && def.name.length > 0 && !/[\u0000-\u001f/\\]/.test(def.name),
        'an accepted name with control characters or slashes',
      );
      invariant(typeof def.imagePath === 'string' && def.imagePath.startsWith('/'), 'an accepted relative image path');
      invariant(Array.isArray(def.devices), 'accepted devices that are not an array');
      invariant(Object.getPrototypeOf(def) === Object.prototype, 'a definition with a replaced prototype');
    },
    isExpectedError: (e) => e instanceof SyntaxError || e instanceof DefinitionError,
  };
}
