/**
 * The client socket's requests and the definition schemas' wording (client-requests.ts,
 * schema-problems.ts): pure, no service. What a bad request or definition is told, word for word,
 * and that valid ones pass untouched.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CLIENT_METHODS, clientParams, envelopeParams } from '../../root-partition/vmms/client-requests.ts';
import { definitionProblems, newDefinition } from '../../root-partition/vmms/vm-definition.ts';
import { switchDefinitionProblems } from '../../root-partition/vmms/switch-definition.ts';
import { emptyTree, treeProblems } from '../../root-partition/vmms/checkpoint-tree.ts';

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
  throw new Error('not refused');
};

describe('VMMS client requests', () => {
  it('takes the envelope apart; params default to {}, and anything but an object is refused with the id kept for the answer', () => {
    expect(envelopeParams({ id: 3, method: 'list' })).toEqual({ id: 3, method: 'list', params: {} });
    expect(envelopeParams({ method: 'show', params: { vm: 'a' } })).toEqual({ id: null, method: 'show', params: { vm: 'a' } });
    expect(refusal(() => envelopeParams({ id: 1, method: 'show', params: ['a'] }))).toEqual({ code: 'VMMS_ERR_REQUEST', message: 'params must be an object' });
    expect(refusal(() => envelopeParams(5))).toEqual({ code: 'VMMS_ERR_REQUEST', message: 'the request must be a JSON object' });
  });

  it('names every bad parameter of a method, in the words the service always used', () => {
    expect(refusal(() => clientParams('start', {}))).toEqual({ code: 'VMMS_ERR_REQUEST', message: 'params.vm (a VM name or id) is required' });
    expect(refusal(() => clientParams('export', { vm: 'a', dir: 'relative/dir' })).message).toBe('params.dir must be an absolute path');
    expect(refusal(() => clientParams('import', { folder: '/x\0y', copyTo: 7, newId: 'yes' })).message).toBe(
      'params.folder must be an absolute path; params.copyTo must be an absolute path; params.newId must be true or false',
    );
    expect(refusal(() => clientParams('stop', { vm: 'a', timeoutMs: -1, save: 1 })).message).toBe(
      'params.save must be true or false; params.timeoutMs must be a number of milliseconds',
    );
    expect(refusal(() => clientParams('console-input', { vm: 'a', data: 'not base64!' })).message).toBe('params.data (base64 bytes) is required');
  });

  it('passes valid params through unchanged (fields a method does not know are ignored, not refused)', () => {
    const stop = { vm: 'web', save: false, turnOff: false, force: true, timeoutMs: 30_000, reason: 'maintenance', json: true };
    expect(clientParams('stop', stop)).toBe(stop);
    expect(clientParams('import', { folder: '/e/web', copyTo: '/vms', newId: true, name: 'web-2' })).toEqual({
      folder: '/e/web',
      copyTo: '/vms',
      newId: true,
      name: 'web-2',
    });
    expect(clientParams('console-input', { vm: 'web', data: Buffer.from('ls\n').toString('base64') })).toMatchObject({ vm: 'web' });
    for (const m of ['list', 'load-errors', 'orphans'] as const) expect(clientParams(m, {})).toEqual({});
  });

  it('never throws anything but a request error, whatever the params (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...CLIENT_METHODS),
        fc.dictionary(fc.constantFrom('vm', 'dir', 'folder', 'copyTo', 'data', 'save', 'timeoutMs', 'name', 'x'), fc.jsonValue()),
        (method, params) => {
          try {
            expect(clientParams(method, params)).toBe(params);
          } catch (e) {
            expect((e as { code?: string }).code).toBe('VMMS_ERR_REQUEST');
            expect((e as Error).message).toMatch(/^params[ .]/);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('definition wording', () => {
  const d = newDefinition({ name: 'v', memoryBytes: 16 << 20, imagePath: '/x.wasm' });

  it('one problem per field (the first rule it breaks), every unknown field, and rules across entries beside their entry', () => {
    expect(definitionProblems({ ...d, memoryBytes: 1000, colour: 'blue', shade: 2 })).toEqual([
      'memoryBytes: must be between 65536 and 4294967296',
      'colour: unknown field',
      'shade: unknown field',
    ]);
    expect(
      definitionProblems({
        ...d,
        devices: [
          { kind: 'scsi-controller', disks: [{ location: 1 }, { location: 1, path: 'x' }] },
          { kind: 'network-adapter', mac: '01:00:5e:00:00:01', speed: 10 },
          { kind: 'integration-services' },
          { kind: 'integration-services' },
          'disk',
        ],
      }),
    ).toEqual([
      'devices[0].disks[1].path: must be an absolute path to a raw disk image',
      'devices[0].disks[1].location: 1 is already taken on this controller',
      'devices[1].mac: must be a unicast address (01:00:5e:00:00:01 is a group address)',
      'devices[1].speed: unknown field',
      'devices[3]: only one integration-services entry',
      'devices[4]: must be an object with a kind',
    ]);
    expect(definitionProblems(['not', 'an', 'object'])).toEqual(['the definition must be a JSON object']);
    // Keys the schema library passes over in silence are typos like any other, at any depth.
    const text = JSON.stringify({ ...d, devices: [{ kind: 'ide-disk' }] })
      .replace('"kind"', '"__proto__":{"x":1},"kind"')
      .replace('"version"', '"constructor":1,"version"');
    expect(definitionProblems(JSON.parse(text))).toEqual(['constructor: unknown field', 'devices[0].__proto__: unknown field']);
  });

  it('a list rule meets a value that is not a list: a refusal, not a crash', () => {
    expect(definitionProblems({ ...d, devices: 'none' })).toEqual(['devices: must be an array']);
    expect(definitionProblems({ ...d, devices: [{ kind: 'scsi-controller', disks: 3 }] })).toEqual(['devices[0].disks: must be an array']);
    expect(treeProblems({ ...emptyTree(d.id), checkpoints: {} }, d.id)).toEqual(['checkpoints: must be an array of at most 50']);
    expect(
      switchDefinitionProblems({
        version: 1,
        id: d.id,
        name: 's',
        type: 'internal',
        passt: { guestAddress: '10.0.2.15/24', gateway: '10.0.2.2', forwards: 'udp:1:2' },
      }),
    ).toEqual(['passt.forwards: must be a list of at most 32']);
  });

  it("any JSON in any field is answered in the project's words, never with the library's or an exception (property)", () => {
    const anyField = (keys: string[]) => fc.dictionary(fc.constantFrom(...keys, 'extra'), fc.jsonValue({ maxDepth: 3 }));
    const device = fc
      .record({ kind: fc.constantFrom('ide-disk', 'scsi-controller', 'integration-services', 'network-adapter', 'user-vsp', 'floppy') })
      .chain((k) => anyField(['controller', 'position', 'path', 'disks', 'mac', 'legacy', 'module', 'instanceId']).map((f) => ({ ...f, ...k })));
    const words = (problems: string[]) => problems.forEach((p) => expect(p).not.toMatch(/Invalid (type|key|length|value)|Expected/));
    fc.assert(
      fc.property(anyField(Object.keys(d)), fc.array(fc.oneof(device, fc.jsonValue({ maxDepth: 2 })), { maxLength: 6 }), (patch, devices) => {
        words(definitionProblems({ ...d, ...patch }));
        words(definitionProblems({ ...d, devices }));
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(anyField(['version', 'vmId', 'checkpoints', 'currentId', 'createdFiles', 'retainedFiles', 'pendingMerges']), (patch) => {
        words(treeProblems({ ...emptyTree(d.id), ...patch }, d.id));
        words(switchDefinitionProblems({ version: 1, id: d.id, name: 's', type: 'internal', ...patch, passt: patch }));
      }),
      { numRuns: 300 },
    );
  });

  it('switch definitions: the forwards as a list, the three switch types', () => {
    const base = { version: 1, id: '0f0e0d0c-0b0a-4909-8807-060504030201', name: 'x', type: 'internal' };
    expect(switchDefinitionProblems({ ...base, type: 'external' })).toEqual([]);
    expect(switchDefinitionProblems({ ...base, type: 'bridged' })).toEqual(["type: must be 'private' or 'internal' or 'external'"]);
    expect(switchDefinitionProblems({ ...base, passt: { guestAddress: '10.0.2.15/24', gateway: '10.0.2.15', forwards: [7], mtu: 1500 } })).toEqual([
      'passt.forwards[0]: must be udp|tcp:HOSTPORT:GUESTPORT',
      'passt.mtu: unknown field',
      'passt.gateway: must differ from the guest address',
    ]);
  });
});
