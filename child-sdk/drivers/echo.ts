// The echo VSC: the guest half of the example device pair, on the VSC framework. Sends echo
// requests in batches (one publish and at most one signal per batch), checks every reply byte,
// and asks the host to work on a guest buffer in place through a GPA-direct packet.
import { pageAlloc } from "../kernel/pages";
import { VscChannel, vscOpen } from "../vmbus/vsc";
import { packetOffset8, packetTransIdLo, packetType } from "../vmbus/ring";
import { VmbusPacketType } from "../vmbus/ring-layout";
import {
  ECHO_INTERFACE_TYPE, ECHO_OP_ECHO, ECHO_REQUEST_HEADER, ECHO_GPA_COMPLETION_SIZE, ECHO_MAX_MESSAGE,
} from "./echo-protocol";

// [0] request buffer, [4] receive buffer (one page each, allocated at open).
const BUFFERS: usize = memory.data(8, 8);
const RX_CAPACITY: u32 = 4096;

/** Opens the echo channel with rings of `ringBytes` each way (control page included). */
export function echoOpen(ringBytes: u32): VscChannel | null {
  if (load<usize>(BUFFERS) == 0) {
    store<usize>(BUFFERS, pageAlloc());
    store<usize>(BUFFERS, pageAlloc(), 4);
  }
  return vscOpen(ECHO_INTERFACE_TYPE, ringBytes, ringBytes);
}

function patternByte(seq: u32, i: u32): u8 { return <u8>(seq * 7 + i * 13 + 1); }

/** True when the packet at `p` is the reply to request `seq` of `length` data bytes. */
function replyOk(p: usize, n: i32, seq: u32, length: u32, completion: bool): bool {
  if (n < 0 || packetTransIdLo(p) != seq) return false;
  if (packetType(p) != (completion ? VmbusPacketType.Completion : VmbusPacketType.DataInband)) return false;
  const body = p + (<usize>packetOffset8(p) << 3);
  if (<u32>n < (packetOffset8(p) << 3) + ECHO_REQUEST_HEADER + length) return false;
  if (load<u32>(body) != ECHO_OP_ECHO || load<u32>(body, 4) != length) return false;
  for (let i: u32 = 0; i < length; i++) if (load<u8>(body + ECHO_REQUEST_HEADER + i) != patternByte(seq, i)) return false;
  return true;
}

/**
 * Round-trips `count` echo requests of `length` data bytes, `perBatch` per publish, as
 * completions (`completion`) or in-band replies. Returns the number of replies that matched,
 * or a negative ring error.
 */
export function echoRoundTrip(ch: VscChannel, count: u32, perBatch: u32, length: u32, completion: bool): i32 {
  if (length > ECHO_MAX_MESSAGE - ECHO_REQUEST_HEADER) return -2;
  const tx = load<usize>(BUFFERS);
  const rx = load<usize>(BUFFERS, 4);
  let sent: u32 = 0, received: u32 = 0, good: i32 = 0;
  while (received < count) {
    if (sent < count) {
      ch.batchBegin();
      for (let k: u32 = 0; k < perBatch && sent < count; k++, sent++) {
        store<u32>(tx, ECHO_OP_ECHO);
        store<u32>(tx, length, 4);
        for (let i: u32 = 0; i < length; i++) store<u8>(tx + ECHO_REQUEST_HEADER + i, patternByte(sent, i));
        const r = ch.sendInband(sent, 0, tx, ECHO_REQUEST_HEADER + length, completion);
        if (r < 0) return r;
      }
      ch.batchEnd();
    }
    // Drain every reply to what was sent before sending more (a real driver would read while it waits for space).
    while (received < sent) {
      ch.recvBegin();
      let n = ch.recvNext(rx, RX_CAPACITY);
      while (n > 0) {
        if (replyOk(rx, n, received, length, completion)) good++;
        received++;
        n = ch.recvNext(rx, RX_CAPACITY);
      }
      ch.recvEnd();
      if (n < 0) return n;
      if (received < sent) {
        if (!ch.isOpen()) return good;
        ch.waitForHost();
      }
    }
  }
  return good;
}

/**
 * Sends a GPA-direct request `op` over `length` bytes at `buffer` and waits for its completion.
 * Returns the completion's status; byte count and checksum are left at `result` (8 bytes).
 */
export function echoGpaRequest(ch: VscChannel, op: u32, buffer: usize, length: u32, transId: u32, result: usize): u32 {
  const tx = load<usize>(BUFFERS);
  const rx = load<usize>(BUFFERS, 4);
  store<u32>(tx, op);
  store<u32>(tx, 0, 4);
  if (ch.sendGpaDirect(transId, 0, buffer, length, tx, 8) < 0) return 0xffffffff;
  for (;;) {
    const n = ch.recv(rx, RX_CAPACITY);
    if (n <= 0) return 0xfffffffe;
    const body = rx + (<usize>packetOffset8(rx) << 3);
    if (packetType(rx) != VmbusPacketType.Completion || packetTransIdLo(rx) != transId) continue;
    if (<u32>n < (packetOffset8(rx) << 3) + ECHO_GPA_COMPLETION_SIZE) return 0xfffffffd;
    store<u32>(result, load<u32>(body, 4));
    store<u32>(result, load<u32>(body, 8), 4);
    return load<u32>(body);
  }
  return 0xffffffff; // not reached
}
