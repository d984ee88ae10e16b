import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  StorVspProtocolError,
  VSTOR_PACKET_SIZE,
  decodeChannelProperties,
  decodeProtocolVersion,
  decodeSubChannelCount,
  decodeVmscsiRequest,
  decodeVstorHeader,
  encodeSrbCompletion,
  senseBufferSize,
  vmscsiSizeDelta,
} from '../../root-partition/vsp/storvsp/storvsp-protocol.ts';
import { fromHex, toHex } from './storvsp-test-guest.ts';

const srbVectors = JSON.parse(readFileSync(new URL('../vectors/storvsp/srb.json', import.meta.url), 'utf8')) as {
  steps: { request: string; completion: string }[];
};

describe('storvsp-protocol', () => {
  it('sizes: a vstor_packet is 64 bytes; pre-Win8 vmscsi_request is 16 bytes shorter with an 18-byte sense buffer', () => {
    expect(VSTOR_PACKET_SIZE).toBe(64);
    expect([vmscsiSizeDelta(0x0602), vmscsiSizeDelta(0x0600), vmscsiSizeDelta(0x0501), vmscsiSizeDelta(0x0402), vmscsiSizeDelta(0x0200)]).toEqual([
      0, 0, 0, 16, 16,
    ]);
    expect([senseBufferSize(0x0501), senseBufferSize(0x0402)]).toEqual([0x14, 0x12]);
  });

  it('decodes every field of a Linux WRITE(10) SRB', () => {
    const r = decodeVmscsiRequest(fromHex(srbVectors.steps[0]!.request), 0);
    expect({ ...r, cdb: toHex(r.cdb) }).toEqual({
      length: 0x34,
      srbStatus: 0,
      scsiStatus: 0,
      portNumber: 2,
      pathId: 0,
      targetId: 0,
      lun: 0,
      cdbLength: 10,
      senseInfoLength: 0x14,
      dataIn: 0,
      reserved: 0,
      dataTransferLength: 4096,
      cdb: '2a000000001000000800000000000000',
      queueTag: 0xff,
      queueAction: 0x20,
      srbFlags: 0x18a,
      timeOutValue: 60,
      queueSortKey: 0,
    });
  });

  it('decodes a pre-Win8 SRB without reading the Win8 extension', () => {
    const p = fromHex(srbVectors.steps[0]!.request).slice(0, 48);
    const r = decodeVmscsiRequest(p, 16);
    expect([r.dataTransferLength, r.queueTag, r.srbFlags, r.timeOutValue]).toEqual([4096, 0, 0, 0]);
    expect(() => decodeVmscsiRequest(p, 0)).toThrow(StorVspProtocolError);
  });

  it('throws typed errors for truncated packets', () => {
    for (const f of [
      () => decodeVstorHeader(new Uint8Array(11)),
      () => decodeProtocolVersion(new Uint8Array(15)),
      () => decodeSubChannelCount(new Uint8Array(13)),
      () => decodeChannelProperties(new Uint8Array(20)),
    ]) {
      expect(f).toThrowError(expect.objectContaining({ code: 'STORVSP_ERR_SHORT_PACKET' }));
    }
  });

  it('an SRB completion echoes the request and carries status, length and sense', () => {
    const req = fromHex(srbVectors.steps[2]!.request);
    const sense = fromHex('700005000000000a000000002100000000000000').subarray(0, 18);
    const out = encodeSrbCompletion(req, 64, 0xc0000185, { srbStatus: 0x86, scsiStatus: 2, dataTransferLength: 0, sense });
    expect(toHex(out)).toBe(srbVectors.steps[2]!.completion);
    const short = encodeSrbCompletion(req.slice(0, 48), 48, 0, { srbStatus: 1, scsiStatus: 0, dataTransferLength: 5, sense: new Uint8Array(0) });
    expect(short.length).toBe(48);
  });

  it('decoders never throw anything but StorVspProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.constantFrom(0, 16), (bytes, delta) => {
        for (const f of [
          decodeVstorHeader,
          decodeProtocolVersion,
          decodeSubChannelCount,
          decodeChannelProperties,
          (b: Uint8Array) => decodeVmscsiRequest(b, delta),
        ]) {
          try {
            f(bytes);
          } catch (e) {
            expect(e).toBeInstanceOf(StorVspProtocolError);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
