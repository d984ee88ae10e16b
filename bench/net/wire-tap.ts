/**
 * Timestamps on the switch's side of the wire for the VM rows of `bench net`: the switch calls
 * `VirtualSwitch.onIngress` for every frame a port hands it, and this picks out the frames the
 * reference guests' `blast` and `ping` send (UDP to the discard port, ICMP echo with the SDK's id).
 * Both guests' stacks send IPv4 without options, so the offsets are fixed.
 */

const ETHERTYPE_IPV4 = 0x0800;
const IP_ICMP = 1;
const IP_UDP = 17;
const UDP_DISCARD_PORT = 9;
/** The id the SDK's pings carry ("ts", child-sdk/net/ipv4-stack.ts). */
const PING_ID = 0x7473;

export type TappedFrame = { what: 'blast' } | { what: 'echo-request'; seq: number } | { what: 'echo-reply'; seq: number } | { what: 'other' };

export function classify(frame: Uint8Array): TappedFrame {
  if (frame.length < 42 || ((frame[12]! << 8) | frame[13]!) !== ETHERTYPE_IPV4 || frame[14] !== 0x45) return { what: 'other' };
  const proto = frame[23];
  if (proto === IP_UDP && ((frame[36]! << 8) | frame[37]!) === UDP_DISCARD_PORT) return { what: 'blast' };
  if (proto === IP_ICMP && ((frame[38]! << 8) | frame[39]!) === PING_ID) {
    const seq = (frame[40]! << 8) | frame[41]!;
    if (frame[34] === 8) return { what: 'echo-request', seq };
    if (frame[34] === 0) return { what: 'echo-reply', seq };
  }
  return { what: 'other' };
}

/** What crossed the switch from two ports during one measurement, with times in ns (hrtime). */
export class WireTap {
  blastFrames = 0;
  firstBlastNs = 0n;
  lastBlastNs = 0n;
  /** Echo requests from the sender, in order (one per ping). */
  readonly requestNs: bigint[] = [];
  /** Echo replies from the receiver after the last blast frame (the fence: it has taken everything before). */
  replyAfterBlastNs = 0n;

  constructor(
    private readonly senderPort: number,
    private readonly receiverPort: number,
  ) {}

  readonly observe = (from: number, frame: Uint8Array): void => {
    if (from !== this.senderPort && from !== this.receiverPort) return;
    const f = classify(frame);
    const now = process.hrtime.bigint();
    if (from === this.senderPort && f.what === 'blast') {
      if (this.blastFrames++ === 0) this.firstBlastNs = now;
      this.lastBlastNs = now;
    } else if (from === this.senderPort && f.what === 'echo-request') {
      this.requestNs.push(now);
    } else if (from === this.receiverPort && f.what === 'echo-reply' && this.blastFrames > 0 && this.replyAfterBlastNs === 0n) {
      this.replyAfterBlastNs = now;
    }
  };

  /** Ping-pong cycles: from one echo request to the next, µs (each is a round trip plus the sender's turn to send again). */
  cyclesUs(): number[] {
    const out: number[] = [];
    for (let i = 1; i < this.requestNs.length; i++) out.push(Number(this.requestNs[i]! - this.requestNs[i - 1]!) / 1000);
    return out;
  }
}
