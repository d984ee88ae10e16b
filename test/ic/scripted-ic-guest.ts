/**
 * A scripted guest for one IC VSP, without a partition: a fake channel records what the VSP
 * sends, and crafted packets are handed to it as a guest's answers.
 */
import type { PacketBatch, VspChannel } from '../../vmbus/host/vsp-channel.ts';
import { ReceivedPacket, VmbusPacketType } from '../../vmbus/ring/index.ts';
import { IcFlag } from '../../root-partition/vsp/ic/ic-protocol.ts';
import type { IcVsp } from '../../root-partition/vsp/ic/ic-vsp.ts';

export interface Sent {
  transId: number;
  bytes: Uint8Array;
}

/** A channel that records sends (and shows each to `onSend`), and a way to deliver guest packets to the VSP. */
export function scriptedGuest(vsp: IcVsp, onSend?: (s: Sent) => void) {
  const sent: Sent[] = [];
  const channel = {
    sendInband: (lo: number, _hi: number, payload: Uint8Array, _c = false, start = 0, end = payload.length) => {
      const s = { transId: lo, bytes: payload.slice(start, end) };
      sent.push(s);
      onSend?.(s);
      return true;
    },
  } as unknown as VspChannel;
  const deliver = (payload: Uint8Array, transId: number, type: number = VmbusPacketType.DataInband) => {
    const p = new ReceivedPacket(4096);
    const len = (16 + payload.length + 7) & ~7;
    p.bytes.set(payload, 16);
    Object.assign(p, { type, offset8: 2, len8: len >> 3, flags: 0, transIdLo: transId, transIdHi: 0 });
    let given = false;
    const batch = { next: () => (given ? null : ((given = true), p)) } as unknown as PacketBatch;
    vsp.onPackets(channel, batch);
  };
  /** The last request, answered in place as a guest would: flags, status, and a body edit. */
  const answer = (edit: (body: DataView) => void = () => {}, status = 0) => {
    const req = sent.at(-1)!;
    const b = new Uint8Array(req.bytes);
    const v = new DataView(b.buffer);
    v.setUint32(20, status, true);
    b[25] = IcFlag.Transaction | IcFlag.Response;
    edit(new DataView(b.buffer, 28));
    deliver(b, req.transId);
  };
  const negotiate = async (fw: [number, number], msg: [number, number]) => {
    vsp.onOpen(channel);
    await new Promise((r) => setImmediate(r));
    answer((body) => {
      body.setUint16(0, 1, true);
      body.setUint16(2, 1, true);
      body.setUint16(8, fw[0], true);
      body.setUint16(10, fw[1], true);
      body.setUint16(12, msg[0], true);
      body.setUint16(14, msg[1], true);
    });
    await new Promise((r) => setImmediate(r));
  };
  return { sent, channel, deliver, answer, negotiate };
}
