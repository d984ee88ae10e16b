/**
 * Integration services (root-partition/vsp/ic): a guest's packets to the KVP, heartbeat and
 * shutdown VSPs, and the IC message and body decoders. Input: `[u8 service]` then packets
 * `[u16 length][u8 mode][payload]`; mode bit 0 gives the packet the transaction id of the
 * host's last request (an answer), bit 1 marks it as a response with status 0 (past the
 * first checks), bit 2 has the host start a request first. The VSP is real; its channel is
 * a recorder (the ring is fuzzed by the vmbus-ring target). Bugs: an exception, or more host
 * packets than one per guest packet and host request.
 */
import type { PacketBatch, VspChannel } from '../../vmbus/host/vsp-channel.ts';
import { ReceivedPacket, VmbusPacketType } from '../../vmbus/ring/index.ts';
import { HeartbeatVsp } from '../../root-partition/vsp/ic/heartbeat-vsp.ts';
import { decodeHeartbeat, decodeShutdown, decodeTimeSample } from '../../root-partition/vsp/ic/ic-bodies.ts';
import {
  decodeIcMessage,
  decodeNegotiateResponse,
  encodeIcMessage,
  IC_FRAMEWORK_VERSIONS,
  IcFlag,
  IcMessageType,
} from '../../root-partition/vsp/ic/ic-protocol.ts';
import type { IcVsp } from '../../root-partition/vsp/ic/ic-vsp.ts';
import { decodeKvpItem } from '../../root-partition/vsp/ic/kvp-protocol.ts';
import { KvpVsp } from '../../root-partition/vsp/ic/kvp-vsp.ts';
import { ShutdownVsp } from '../../root-partition/vsp/ic/shutdown-vsp.ts';
import { invariant, type FuzzTarget } from '../engine/target.ts';
import { InputBuilder, InputCursor } from './input-cursor.ts';

const tick = () => new Promise<void>((r) => setImmediate(r));

function negotiateAnswer(): Uint8Array {
  const body = new Uint8Array(8 + 4 * 4);
  const v = new DataView(body.buffer);
  v.setUint16(0, 1, true);
  v.setUint16(2, 1, true);
  v.setUint16(8, 3, true);
  v.setUint16(10, 0, true);
  v.setUint16(12, 3, true);
  v.setUint16(14, 0, true);
  return encodeIcMessage(
    {
      framework: { major: 3, minor: 0 },
      type: IcMessageType.Negotiate,
      message: { major: 0, minor: 0 },
      bodySize: body.length,
      status: 0,
      transactionId: 1,
      flags: IcFlag.Transaction | IcFlag.Response,
    },
    body,
  );
}

export function createTarget(): FuzzTarget {
  return {
    name: 'ic',
    description: 'Integration-services packets to the KVP, heartbeat and shutdown VSPs, and the IC decoders',
    maxInputBytes: 8192,
    dictionary: [Uint8Array.of(IcFlag.Transaction | IcFlag.Response), ...Object.values(IcMessageType).map((t) => Uint8Array.of(t, 0))],
    seeds: () =>
      [0, 1, 2].map((service) => {
        const a = negotiateAnswer();
        return new InputBuilder().u8(service).u16(a.length).u8(3).bytes(a).u16(40).u8(7).bytes(new Uint8Array(40)).build();
      }),
    async run(input) {
      const c = new InputCursor(input);
      const errors: unknown[] = [];
      const options = { log: (e: unknown) => errors.push(e), requestTimeoutMs: 60_000 };
      const which = c.u8() % 3;
      const vsp: IcVsp = which === 0 ? new KvpVsp(options) : which === 1 ? new HeartbeatVsp({ ...options, intervalMs: 60_000 }) : new ShutdownVsp(options);
      const sent: { transId: number; bytes: Uint8Array }[] = [];
      const channel = {
        sendInband: (lo: number, _hi: number, payload: Uint8Array, _c = false, start = 0, end = payload.length) => {
          sent.push({ transId: lo, bytes: payload.slice(start, end) });
          return true;
        },
      } as unknown as VspChannel;
      vsp.onOpen(channel);
      await tick();
      const pending: Promise<unknown>[] = [];
      let packets = 0;
      let requests = 0;
      while (!c.done) {
        const length = c.u16() % 4096;
        const mode = c.u8();
        const payload = c.take(length);
        decodeIcMessage(payload);
        decodeHeartbeat(payload);
        decodeShutdown(payload);
        decodeTimeSample(payload, 3);
        decodeTimeSample(payload, 4);
        decodeKvpItem(payload, mode % 8);
        decodeNegotiateResponse(payload, IC_FRAMEWORK_VERSIONS, vsp.spec.messageVersions);
        if (mode & 4) {
          if (vsp instanceof KvpVsp) {
            pending.push(vsp.get(0, 'key'), vsp.set(1, 'k', 'v'));
            requests += 2;
          } else if (vsp instanceof ShutdownVsp) {
            pending.push(vsp.initiateShutdown({ reason: 'fuzz', timeoutMs: 60_000 }));
            requests++;
          }
        }
        if (mode & 2 && payload.length > 25) {
          payload[25] = IcFlag.Transaction | IcFlag.Response;
          payload.fill(0, 20, 24);
        }
        const p = new ReceivedPacket(vsp.maxPacketBytes + 16);
        const body = payload.subarray(0, vsp.maxPacketBytes);
        p.bytes.set(body, 16);
        const transId = mode & 1 ? (sent.at(-1)?.transId ?? 0) : payload.length;
        Object.assign(p, {
          type: mode & 8 ? VmbusPacketType.Completion : VmbusPacketType.DataInband,
          offset8: 2,
          len8: (16 + body.length + 7) >> 3,
          flags: 0,
          transIdLo: transId,
          transIdHi: 0,
        });
        let given = false;
        packets++;
        vsp.onPackets(channel, { next: () => (given ? null : ((given = true), p)) } as unknown as PacketBatch);
        await tick();
      }
      // One answer at most per guest packet, plus the host's own requests: a guest cannot make the host talk more.
      invariant(sent.length <= packets + requests + 1, `the host sent ${sent.length} packets for ${packets} guest packets`);
      vsp.onClose(channel);
      vsp.dispose();
      await Promise.all(pending);
    },
    isExpectedError: () => false,
  };
}
