import type { HvError } from '../../hypervisor/hv-error.ts';
import * as C from '../../vmbus/protocol/channel-constants.ts';
import { decodeChannelMessage } from '../../vmbus/protocol/channel-decode.ts';
import { encodeChannelMessage, encodeGpadl } from '../../vmbus/protocol/channel-encode.ts';
import type { ChannelMessage } from '../../vmbus/protocol/channel-messages.ts';
import type { OpenedChannel, VmbusServerLimits, VmbusServerNotifier } from '../../vmbus/server/server-types.ts';
import { VmbusServer } from '../../vmbus/server/vmbus-server.ts';

const T = C.ChannelMessageType;
export const SCSI = 'ba6163d9-04a1-4d29-b605-72e2ffb1dc7f';
export const NET = 'f8615163-df3e-46c5-913f-f2d2f965ed0e';

/** Records every action of the server; `openStatus` is what channelOpened answers. */
export class RecordingNotifier implements VmbusServerNotifier {
  sent: { message: ChannelMessage; vp: number; bytes: Uint8Array }[] = [];
  opened: OpenedChannel[] = [];
  closed: number[] = [];
  released: number[] = [];
  errors: HvError[] = [];
  openStatus = 0;

  sendToGuest(bytes: Uint8Array, vp: number): void {
    const d = decodeChannelMessage(bytes);
    if (!d.ok) throw new Error(`server sent an undecodable message: ${JSON.stringify(d.error)}`);
    this.sent.push({ message: d.message, vp, bytes });
  }
  channelOpened(ch: OpenedChannel): number {
    this.opened.push(ch);
    return this.openStatus;
  }
  channelClosed(relid: number): void {
    this.closed.push(relid);
  }
  channelReleased(relid: number): void {
    this.released.push(relid);
  }
  protocolError(e: HvError): void {
    this.errors.push(e);
  }

  /** Messages sent since the last call. */
  take(): ChannelMessage[] {
    const out = this.sent.map((s) => s.message);
    this.sent = [];
    return out;
  }
}

export const LIMITS: VmbusServerLimits = {
  vpCount: 2,
  guestPageCount: 0x4000,
  maxGpadls: 8,
  maxPagesPerGpadl: 128,
  maxPendingGpadls: 2,
  maxChannels: 16,
};

export function makeServer(limits: Partial<VmbusServerLimits> = {}) {
  const n = new RecordingNotifier();
  const server = new VmbusServer(n, { ...LIMITS, ...limits });
  const post = (m: ChannelMessage, conn: number = C.VMBUS_MESSAGE_CONNECTION_ID) => server.handleGuestMessage(encodeChannelMessage(m), conn);
  const contact = (version: number, conn = version >= C.VmbusVersion.Win10V5 ? 4 : 1, targetVcpu = 0) =>
    post(
      {
        type: T.InitiateContact,
        version,
        targetVcpu,
        interruptPage: 0n,
        msgSint: 2,
        msgVtl: 0,
        featureFlags: 0,
        monitorPage1: 0x10000n,
        monitorPage2: 0x11000n,
        clientId: null,
      },
      conn,
    );
  const gpadl = (relid: number, handle: number, pages: number) => {
    for (const m of encodeGpadl(
      relid,
      handle,
      Array.from({ length: pages }, (_, i) => BigInt(0x200 + i)),
    )) {
      server.handleGuestMessage(m, C.VMBUS_MESSAGE_CONNECTION_ID);
    }
  };
  const open = (relid: number, handle: number, downstream = 4, targetVp = 0, openId = relid) =>
    post({
      type: T.OpenChannel,
      childRelid: relid,
      openId,
      ringGpadlHandle: handle,
      targetVp,
      downstreamRingPageOffset: downstream,
      userData: new Uint8Array(120),
    });
  /** Connected at 5.3 with the offers delivered. */
  const connect = () => {
    contact(C.VmbusVersion.Win10V5_3);
    post({ type: T.RequestOffers });
    n.take();
  };
  return { n, server, post, contact, gpadl, open, connect };
}
