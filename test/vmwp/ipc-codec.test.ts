/** VMMS↔VMWP framing and schemas, byte for byte. */
import { describe, expect, it } from 'vitest';
import { decodeBulk, encodeBulk } from '../../root-partition/ipc/bulk-codec.ts';
import { encodeFrame, FrameChannel, FrameReader } from '../../root-partition/ipc/frame-codec.ts';
import { decodeControl, encodeControl } from '../../root-partition/ipc/vmwp-control-schema.ts';

describe('VMWP IPC', () => {
  it('frames are a u32 length, a channel byte and the payload, reassembled across chunks', () => {
    const f = encodeFrame(FrameChannel.Bulk, new Uint8Array([0xaa, 0xbb]));
    expect(f.toString('hex')).toBe('0300000001aabb');
    const r = new FrameReader();
    const two = Buffer.concat([f, encodeFrame(FrameChannel.Control, new Uint8Array([1]))]);
    expect(r.push(two.subarray(0, 3))).toEqual([]);
    const frames = r.push(two.subarray(3));
    expect(frames.map((x) => [x.channel, Buffer.from(x.payload).toString('hex')])).toEqual([
      [1, 'aabb'],
      [0, '01'],
    ]);
  });

  it('refuses malformed streams', () => {
    expect(() => new FrameReader().push(Buffer.from('0000000000', 'hex'))).toThrow(/bad frame length 0/);
    expect(() => new FrameReader().push(Buffer.from('ffffffff00', 'hex'))).toThrow(/bad frame length/);
    expect(() => new FrameReader().push(Buffer.from('0200000007aa', 'hex'))).toThrow(/unknown frame channel 7/);
  });

  it('integration-service requests and answers are new field numbers (older peers skip them)', () => {
    const bytes = encodeControl({ request: { version: 1, requestId: 2, operation: 'SHUTDOWN', timeoutMs: 1000, force: true, reason: 'x' } });
    // request { version=1, request_id=2, operation=SHUTDOWN(9), timeout_ms(5)=1000, force(6)=1, reason(7)="x" }
    expect(Buffer.from(bytes).toString('hex')).toBe('0a0e080110021809' + '28e807' + '3001' + '3a0178');
    expect(decodeControl(bytes)).toMatchObject({ request: { operation: 'SHUTDOWN', timeoutMs: 1000, force: true, reason: 'x' } });
    const r = decodeControl(
      encodeControl({ response: { version: 1, requestId: 2, ok: true, heartbeatStatus: 2, shutdownOutcome: 'timed-out', kvpFound: true, kvpValue: 'v' } }),
    );
    expect(r).toMatchObject({ response: { heartbeatStatus: 2, shutdownOutcome: 'timed-out', kvpFound: true, kvpValue: 'v' } });
  });

  it('console input and heartbeat changes are new numbers too (operation 12, request field 11; notification kind 5, field 6)', () => {
    const input = encodeControl({ request: { version: 1, requestId: 6, operation: 'CONSOLE_INPUT', consoleInput: Buffer.from('hi\r') } });
    // request { version=1, request_id=6, operation=CONSOLE_INPUT(12), console_input(11)=68 69 0d }
    expect(Buffer.from(input).toString('hex')).toBe('0a0b08011006180c' + '5a0368690d');
    expect(decodeControl(input)).toMatchObject({ request: { operation: 'CONSOLE_INPUT', consoleInput: Buffer.from('hi\r') } });
    const beat = encodeControl({ notification: { version: 1, kind: 'HEARTBEAT', heartbeatStatus: 13 } });
    // ControlMessage.notification (field 3) { version=1, kind=HEARTBEAT(5), heartbeat_status(6)=13 Lost Communication }
    expect(Buffer.from(beat).toString('hex')).toBe('1a06080110053' + '00d');
    expect(decodeControl(beat)).toMatchObject({ notification: { kind: 'HEARTBEAT', heartbeatStatus: 13 } });
  });

  it('a checkpoint request is operation 16 with repeated disk switches (field 13); its answer carries pause_ms (field 15)', () => {
    const req = encodeControl({
      request: { version: 1, requestId: 7, operation: 'CHECKPOINT', savedStatePath: '/c', diskSwitches: [{ from: '/a', to: '/b' }] },
    });
    // request { version=1, request_id=7, operation=CHECKPOINT(16), saved_state_path="/c", disk_switches(13)={ from="/a", to="/b" } }
    expect(Buffer.from(req).toString('hex')).toBe('0a14' + '0801' + '1007' + '1810' + '22022f63' + '6a08' + '0a022f61' + '12022f62');
    expect(decodeControl(req)).toMatchObject({ request: { operation: 'CHECKPOINT', diskSwitches: [{ from: '/a', to: '/b' }] } });
    const resp = encodeControl({ response: { version: 1, requestId: 7, ok: true, pauseMs: 1.5 } });
    expect(Buffer.from(resp).toString('hex')).toBe('120f' + '0801' + '1007' + '1801' + '79000000000000f83f');
    expect(decodeControl(resp)).toMatchObject({ response: { pauseMs: 1.5 } });
  });

  it('control messages are field-numbered protobuf', () => {
    const bytes = encodeControl({ request: { version: 1, requestId: 5, operation: 'SAVE', savedStatePath: '/s' } });
    // ControlMessage.request (field 1) { version=1, request_id=5, operation=SAVE(4), saved_state_path="/s" }
    expect(Buffer.from(bytes).toString('hex')).toBe('0a0a08011005180422022f73');
    // proto3: the fields added later read as their defaults (0, false, '') from an older peer's bytes.
    expect(decodeControl(bytes)).toEqual({
      request: {
        version: 1,
        requestId: 5,
        operation: 'SAVE',
        savedStatePath: '/s',
        timeoutMs: 0,
        force: false,
        reason: '',
        kvpPool: 0,
        kvpKey: '',
        kvpValue: '',
        consoleInput: Buffer.alloc(0),
        migration: '',
        diskSwitches: [],
      },
    });
    const n = decodeControl(encodeControl({ notification: { version: 1, kind: 'GUEST_STOPPED', exits: [{ vp: 0, reason: 'fault', detail: 'trap' }] } }));
    expect(n).toMatchObject({ notification: { kind: 'GUEST_STOPPED', exits: [{ vp: 0, reason: 'fault', detail: 'trap' }] } });
    expect(() => encodeControl({ request: { version: 1, requestId: 1, operation: 'FLY' as never } })).toThrow(/unknown control operation/);
    expect(() => decodeControl(new Uint8Array([0x0a, 0xff]))).toThrow();
  });

  it('bulk records are msgpack', () => {
    const rec = { kind: 'console', port: 'com1', data: new Uint8Array([104, 105]) } as const;
    expect(decodeBulk(encodeBulk(rec))).toEqual({ ...rec, data: expect.anything() });
    expect(Buffer.from((decodeBulk(encodeBulk(rec)) as typeof rec).data).toString()).toBe('hi');
    expect(() => decodeBulk(encodeBulk({ kind: 'nope' } as never))).toThrow(/unknown bulk record/);
  });
});
