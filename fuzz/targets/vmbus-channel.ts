/**
 * VMBus channel management (vmbus/protocol decode + vmbus/server state machine): the input is a
 * sequence of SynIC message payloads a guest posts, each `[u8 length][u8 flags][payload]`; flag
 * bit 0 sends it on connection id 4 instead of 1, bit 1 makes the step a host action instead
 * (rescind or sub-channel offer of relid payload[0]). The server starts with two offers.
 * Bugs: any exception from handleGuestMessage, a message the server sends that does not decode,
 * or a bound the limits set (GPADLs, pending GPADLs, channels) exceeded.
 */
import { HvError } from '../../hypervisor/hv-error.ts';
import * as C from '../../vmbus/protocol/channel-constants.ts';
import { decodeChannelMessage } from '../../vmbus/protocol/channel-decode.ts';
import { encodeChannelMessage, encodeGpadl } from '../../vmbus/protocol/channel-encode.ts';
import type { ChannelMessage } from '../../vmbus/protocol/channel-messages.ts';
import { LIMITS, NET, SCSI, makeServer } from '../../test/vmbus/channel-server-harness.ts';
import { invariant, type FuzzTarget } from '../engine/target.ts';
import { InputBuilder, InputCursor } from './input-cursor.ts';

const T = C.ChannelMessageType;

function step(b: InputBuilder, payload: Uint8Array, flags = 0): void {
  b.u8(payload.length).u8(flags).bytes(payload);
}

function contact(version: number): Uint8Array {
  return encodeChannelMessage({
    type: T.InitiateContact,
    version,
    targetVcpu: 0,
    interruptPage: 0n,
    msgSint: 2,
    msgVtl: 0,
    featureFlags: 0,
    monitorPage1: 0x10000n,
    monitorPage2: 0x11000n,
    clientId: null,
  });
}

function seedConversation(version: number, pages: number): Uint8Array {
  const b = new InputBuilder();
  step(b, contact(version), version >= C.VmbusVersion.Win10V5 ? 1 : 0);
  step(b, encodeChannelMessage({ type: T.RequestOffers }));
  for (const m of encodeGpadl(
    1,
    7,
    Array.from({ length: pages }, (_, i) => BigInt(0x200 + i)),
  ))
    step(b, m);
  const open: ChannelMessage = {
    type: T.OpenChannel,
    childRelid: 1,
    openId: 1,
    ringGpadlHandle: 7,
    targetVp: 0,
    downstreamRingPageOffset: Math.max(1, pages >> 1),
    userData: new Uint8Array(120),
  };
  step(b, encodeChannelMessage(open));
  step(b, Uint8Array.of(1), 2); // sub-channel offer of relid 1
  step(b, encodeChannelMessage({ type: T.CloseChannel, childRelid: 1 }));
  step(b, encodeChannelMessage({ type: T.GpadlTeardown, childRelid: 1, gpadl: 7 }));
  step(b, Uint8Array.of(2, 1), 2); // rescind relid 2
  step(b, encodeChannelMessage({ type: T.RelidReleased, childRelid: 2 }));
  step(b, encodeChannelMessage({ type: T.Unload }));
  return b.build();
}

export function createTarget(): FuzzTarget {
  return {
    name: 'vmbus-channel',
    description: 'VMBus channel messages (decode + host server state machine), a sequence of guest posts',
    maxInputBytes: 8192,
    dictionary: [
      contact(C.VmbusVersion.Win10V5_3),
      contact(C.VmbusVersion.Win10),
      ...Object.values(T)
        .filter((v): v is number => typeof v === 'number')
        .map((t) => Uint8Array.of(t, 0, 0, 0)),
    ],
    seeds: () => [seedConversation(C.VmbusVersion.Win10V5_3, 8), seedConversation(C.VmbusVersion.Win10, 40), seedConversation(C.VmbusVersion.Win8_1, 2)],
    run(input) {
      const { server, n } = makeServer();
      server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
      server.offerChannel({ interfaceType: NET, interfaceInstance: NET });
      const c = new InputCursor(input);
      while (!c.done) {
        const length = c.u8();
        const flags = c.u8();
        const payload = c.take(length);
        if (flags & 2) {
          try {
            if (payload[1]! & 1) server.rescindChannel(payload[0]!);
            else server.offerSubchannel(payload[0]!);
          } catch (e) {
            // Host actions refuse what the state does not allow; the guest cannot cause that.
            if (!(e instanceof HvError)) throw e;
          }
          continue;
        }
        decodeChannelMessage(payload);
        server.handleGuestMessage(payload, flags & 1 ? C.VMBUS_MESSAGE_CONNECTION_ID_4 : C.VMBUS_MESSAGE_CONNECTION_ID);
        invariant(server.gpadlCount <= LIMITS.maxGpadls, `${server.gpadlCount} GPADLs held (limit ${LIMITS.maxGpadls})`);
        invariant(server.pendingGpadlCount <= LIMITS.maxPendingGpadls, `${server.pendingGpadlCount} pending GPADLs (limit ${LIMITS.maxPendingGpadls})`);
        invariant(server.channelCount() <= LIMITS.maxChannels, `${server.channelCount()} channels (limit ${LIMITS.maxChannels})`);
      }
      for (const s of n.sent) invariant(s.bytes.length <= C.VMBUS_MAX_MESSAGE_SIZE, 'the server sent a message longer than a SynIC payload');
    },
    // The server reports bad guest messages through the notifier; nothing may be thrown.
    isExpectedError: () => false,
  };
}
